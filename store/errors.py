"""Errors raised by the feature store. All are subclasses of :class:`StoreError`."""

from __future__ import annotations


class StoreError(Exception):
    """A store problem the user can act on; ``hint`` says how."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class StoreNotFound(StoreError):
    """No store exists at the given path."""


class SchemaError(StoreError):
    """The store was written by a newer record/schema format than this code reads."""


class CorruptRecord(StoreError):
    """A record's header or CRC does not check out."""


class CorruptStore(StoreError):
    """The store's file itself is damaged (e.g. ``data.mdb`` shorter than the pages LMDB says it holds)."""


class MergeConflict(StoreError):
    """Two stores hold different bytes under the same key."""

    def __init__(self, conflicts: list[tuple[str, str, str]]):
        self.conflicts = conflicts
        shown = ", ".join(f"{ns}/{key} (from {src})" for ns, key, src in conflicts[:5])
        more = f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
        super().__init__(
            f"{len(conflicts)} key(s) hold different bytes in the stores being merged: {shown}{more}",
            "Nothing was written. The same key means the same producing config and input, so "
            "different bytes point to nondeterminism or corruption: run `lugpi store verify` on "
            "each store, then drop the bad records (`lugpi store gc`) before merging.",
        )
