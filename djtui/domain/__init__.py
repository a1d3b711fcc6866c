"""What is true: dataclasses, rules, parsers and SQL builders, with no I/O, no Textual and no asyncio.

May import only ``djtui.errors``, ``djtui.config`` and other domain modules; code that writes SQL takes a
``dialect`` (``domain/dialects``) instead of quoting on its own.
"""
