"""The 0.14 store's candidates from a merged (streamed) comparison instead of two in-memory sets.

:func:`merged_candidates` gives the same answer as :func:`djtui.domain.stores.legacy_candidates`
(tested so) when the blob side was compared by :func:`djtui.domain.setdiff.sorted_difference`:
the blob names and blob-row hashes themselves are never held, only what one side has alone.
Attachments and filepath objects (the ``others``) are still compared as sets: they are the few.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from djtui.domain.stores import (
    DEFAULT_SUBFOLDING,
    ExternalRow,
    LegacyCandidates,
    LegacyListing,
    StoredObject,
    legacy_blob_path,
    legacy_object_path,
)


def merged_candidates(db: str, only_listed: Iterable[str], only_rows: Iterable[str], blob_rows: int,
                      other_rows: Iterable[ExternalRow], listing: LegacyListing, *,
                      extra_present: Mapping[str, StoredObject] | None = None,
                      folds: tuple[int, ...] = DEFAULT_SUBFOLDING) -> LegacyCandidates:
    """Candidates from the blob difference (names listed but no row, hashes with a row but no object).

    ``blob_rows`` is how many blob rows were compared; ``listing`` holds the store's other files,
    the empty files (blob or not) and the count, but no blob names.
    """
    extra = extra_present or {}
    untracked_names = set(only_listed)
    untracked = [legacy_blob_path(db, n, folds) for n in sorted(untracked_names)]
    missing = [(h, legacy_blob_path(db, h, folds)) for h in only_rows]
    expected_other: set[str] = set()
    nrows = blob_rows
    for h, att, fp in other_rows:
        nrows += 1
        path = legacy_object_path(db, h, att, fp, folds)
        expected_other.add(path)
        if path not in listing.others and path not in extra:
            missing.append((h, path))
    untracked += [p for p in listing.others if p not in expected_other]
    # an empty blob that is listed is named by a row unless the merge found it on the listed side alone
    zero = [p for p in listing.zero if p in expected_other or (
        p not in listing.others and p.rsplit("/", 1)[-1] not in untracked_names)]
    zero += [p for p, o in extra.items() if o.size == 0]
    return LegacyCandidates(tuple(untracked), tuple(missing), tuple(zero), nrows)
