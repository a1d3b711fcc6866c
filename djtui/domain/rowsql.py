"""An exported row as SQL text, built by the server: the column kinds and the SELECT expression.

Pure: no I/O. ``literal_row_expression`` writes the expression that makes the server format a
row as a SQL tuple literal (``(1,'a',0x00)``); the export writer and ``verify`` both use it, so
the checksums of the written rows and of a loaded copy compare the same text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from djtui.domain.dialects import MYSQL, SqlDialect

_BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "geometry", "point",
                 "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection"}
_NUMERIC_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "double",
                  "real", "year"}
_FLOAT_TYPES = {"float"}
_TEMPORAL_TYPES = {"date", "datetime", "timestamp", "time"}  # their text never holds a quote or a line break


_CR, _CR_ESC, _LF, _LF_ESC = "'\\r'", "'\\\\r'", "'\\n'", "'\\\\n'"  # SQL: '\r' and '\\r'


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # information_schema's data_type, lower case
    nullable: bool = True


_GENERATED = re.compile(r"\b(?:VIRTUAL|STORED|PERSISTENT)\b", re.I)  # not MySQL's DEFAULT_GENERATED


def is_generated(extra: str) -> bool:
    """A generated column (information_schema's ``extra``): the loaded copy computes it, so an export
    never writes it (MySQL 8 and strict mode refuse a value for it; mysqldump leaves it out too)."""
    return bool(_GENERATED.search(extra))


def literal_row_expression(columns: Sequence[Column], alias: str, dialect: SqlDialect = MYSQL) -> str:
    """A SELECT expression giving each row as a SQL tuple literal: numbers bare, binary as hex,
    everything else through ``QUOTE()`` (which escapes quote, backslash, NUL and Ctrl-Z).

    The server evaluates this for every exported row, so each part is as cheap as its type
    allows: a NOT NULL number is the column itself (``CONCAT_WS`` turns it into the same text a
    ``CAST`` would, and cannot skip it), dates and times need no line-break escapes. The text does
    not depend on nullability, so ``verify`` gets the same literals from a copy whatever its DDL.
    FLOAT is printed through DOUBLE: the server's own text of a FLOAT has six digits, so
    16777216 would come back as 16777200 (mysqldump has that loss); the double's digits load
    back into the same FLOAT.
    """
    parts = []
    for col in columns:
        c = f"{alias}.{dialect.ident(col.name)}"
        if col.dtype in _BINARY_TYPES:
            value = f"IF(LENGTH({c}) = 0, QUOTE(''), CONCAT('0x', HEX({c})))"
        elif col.dtype == "bit":
            value = f"CAST({c} + 0 AS CHAR)"
        elif col.dtype in _FLOAT_TYPES:
            value = f"({c} + 0e0)"
        elif col.dtype in _NUMERIC_TYPES:
            value = c
        elif col.dtype in _TEMPORAL_TYPES:
            value = f"QUOTE({c})"
        else:  # line breaks escaped too, so no tool's newline conversion can change a value
            value = f"REPLACE(REPLACE(QUOTE({c}), {_CR}, {_CR_ESC}), {_LF}, {_LF_ESC})"
        quoted = value.startswith(("QUOTE(", "REPLACE("))  # QUOTE(NULL) is already NULL, unquoted
        parts.append(f"IFNULL({value}, 'NULL')" if col.nullable and not quoted else value)
    return "CONCAT('(', CONCAT_WS(',', " + ", ".join(parts) + "), ')')"
