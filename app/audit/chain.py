"""The hash chain over a user's audit entries, and the walk that verifies it.

Each entry's ``hash`` is the sha256 (hex) of a canonical JSON object of its content:
the fields in ``HASHED_FIELDS``, ``created_at`` as ISO 8601 UTC with microseconds
(``2026-03-01T12:00:00.000000Z``), encoded with sorted keys at every level, no spaces,
UTF-8 (what ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
gives). ``prev_hash`` is the hash of the user's previous entry (``GENESIS`` for the
first), so changing, removing or moving one entry breaks the link to the next.

Entry ids are not hashed: the chain's order is the order of ids, which the recorder
assigns under a per-user lock, so a change of ids shows up as entries out of order.

Retention deletes whole archives from the start of a chain. It records each deletion
as an ``archive_deleted`` entry whose old_values carry the deleted object's
``last_hash``: the first remaining entry may link to that hash instead of ``GENESIS``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from app.audit.models import ARCHIVE_DELETED, AuditEntry, ChainBreak

GENESIS = "0" * 64

HASHED_FIELDS = (
    "user_id",
    "actor_id",
    "customer_id",
    "customer_label",
    "event",
    "old_values",
    "new_values",
    "ip",
    "user_agent",
    "request_id",
    "import_id",
    "created_at",
    "prev_hash",
)

EDITED = "edited"
MISSING = "missing"
REORDERED = "reordered"
ARCHIVE_ALTERED = "archive_altered"

_encoder = msgspec.json.Encoder(order="sorted")


def iso(moment: datetime) -> str:
    """A timestamp as the chain hashes it and archives store it."""
    # isoformat is several times faster than strftime, and archives call this per entry.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical(content: Mapping[str, Any]) -> bytes:
    """The bytes an entry's hash is taken over (``content`` holds HASHED_FIELDS)."""
    hashed = {name: content[name] for name in HASHED_FIELDS}
    created_at = hashed["created_at"]
    if isinstance(created_at, datetime):
        hashed["created_at"] = iso(created_at)
    return _encoder.encode(hashed)


# canonical() of an entry whose head is not known yet, in three parts around its two
# head-dependent values: head + created_at + middle + prev_hash + tail (PostgreSQL's
# ``audit_append`` joins them once it holds the chain lock; see the migration).
_SORTED_FIELDS = sorted(HASHED_FIELDS)
_AT = _SORTED_FIELDS.index("created_at")
_PREV = _SORTED_FIELDS.index("prev_hash")
assert _AT < _PREV, "the parts below assume created_at sorts before prev_hash"


def _members(content: Mapping[str, Any], names: Sequence[str]) -> str:
    """The ``"name":value`` members of ``names`` as canonical() writes them, comma-joined."""
    if not names:
        return ""
    return _encoder.encode({name: content[name] for name in names})[1:-1].decode()


def canonical_parts(content: Mapping[str, Any]) -> tuple[str, str, str]:
    """``canonical(content)`` minus its created_at and prev_hash values, as the three
    texts around them (``content`` holds every HASHED_FIELD but those two)."""
    before = _members(content, _SORTED_FIELDS[:_AT])
    middle = _members(content, _SORTED_FIELDS[_AT + 1 : _PREV])
    after = _members(content, _SORTED_FIELDS[_PREV + 1 :])
    return (
        "{" + (before + "," if before else "") + '"created_at":"',
        '"' + ("," + middle if middle else "") + ',"prev_hash":"',
        '"' + ("," + after if after else "") + "}",
    )


def entry_hash(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(content)).hexdigest()


def link(rows: Sequence[dict[str, Any]], previous: str) -> str:
    """Chain ``rows`` (each holding HASHED_FIELDS but the hashes) onto ``previous``, in
    order: sets each row's ``prev_hash`` and ``hash`` exactly as ``entry_hash`` would, with
    the work per row that a bulk write (an import chunk) can afford; the last hash."""
    encode = _encoder.encode
    sha256 = hashlib.sha256
    stamps: dict[datetime, str] = {}
    for row in rows:
        row["prev_hash"] = previous
        hashed = {name: row[name] for name in HASHED_FIELDS}
        created_at = hashed["created_at"]
        if isinstance(created_at, datetime):
            stamp = stamps.get(created_at)
            if stamp is None:
                stamp = stamps[created_at] = iso(created_at)
            hashed["created_at"] = stamp
        row["hash"] = previous = sha256(encode(hashed)).hexdigest()
    return previous


def hash_of(entry: AuditEntry) -> str:
    return entry_hash({name: getattr(entry, name) for name in HASHED_FIELDS})


class ChainWalk:
    """Feed a user's entries in chain order (archives, then the database); ``finish``
    names the first break, if any.

    After the first break it keeps reading (cheaply: no hashing) for two things the
    verdict needs from later entries: whether the missing link turns up further on
    (then entries were reordered, not removed), and the retention anchors that let the
    chain start after ``GENESIS``.
    """

    def __init__(self) -> None:
        self.position = 0
        self.checked = 0
        self._expected = GENESIS
        self._start_prev: str | None = None
        self._start_entry: int | None = None
        self._start_location = ""
        self._start_found = False
        self._anchors: set[str] = set()
        self._break: ChainBreak | None = None
        # While a broken link is pending: the hash it points at, and the hashes seen.
        self._wanted: str | None = None
        self._seen: set[str] = set()
        self._found_later = False

    @property
    def broken(self) -> bool:
        return self._break is not None

    def feed(self, entry: AuditEntry, location: str) -> None:
        self.position += 1
        if entry.event == ARCHIVE_DELETED and entry.old_values:
            anchor = entry.old_values.get("last_hash")
            if isinstance(anchor, str):
                self._anchors.add(anchor)
        if self._start_prev is not None and entry.hash == self._start_prev:
            self._start_found = True
        if self._break is not None:
            if self._wanted is not None and entry.hash == self._wanted:
                self._found_later = True
            return
        self.checked += 1
        if hash_of(entry) != entry.hash:
            self._fail(entry, EDITED, location, "its content does not match its hash")
            return
        if self.position == 1:
            # Checked in finish(): an anchor may only appear further on.
            self._start_prev = entry.prev_hash
            self._start_entry = entry.id
            self._start_location = location
        elif entry.prev_hash != self._expected:
            self._wanted = entry.prev_hash
            self._found_later = entry.prev_hash in self._seen
            self._fail(entry, MISSING, location, "the entry before it is not the one it links to")
            return
        self._seen_add(entry.hash)
        self._expected = entry.hash

    def fail_archive(
        self, entry_id: int | None, position: int, reason: str, location: str, detail: str
    ) -> None:
        """An archive object that is missing or does not match its audit_archives row."""
        if self._break is None:
            self._break = ChainBreak(
                entry_id=entry_id,
                position=position,
                reason=reason,
                location=location,
                detail=detail,
            )

    def finish(self) -> ChainBreak | None:
        start = self._start_prev
        if start is not None and start != GENESIS and start not in self._anchors:
            if self._start_found:
                return ChainBreak(
                    entry_id=self._start_entry,
                    position=1,
                    reason=REORDERED,
                    location=self._start_location,
                    detail="the entry it links to comes after it",
                )
            return ChainBreak(
                entry_id=self._start_entry,
                position=1,
                reason=MISSING,
                location=self._start_location,
                detail="entries before the first one were removed "
                "(it links to an entry no retention run deleted)",
            )
        found = self._break
        if found is not None and found.reason == MISSING and self._found_later:
            return ChainBreak(
                entry_id=found.entry_id,
                position=found.position,
                reason=REORDERED,
                location=found.location,
                detail="the entry it links to is elsewhere in the chain",
            )
        return found

    def _fail(self, entry: AuditEntry, reason: str, location: str, detail: str) -> None:
        self._break = ChainBreak(
            entry_id=entry.id,
            position=self.position,
            reason=reason,
            location=location,
            detail=detail,
        )

    def _seen_add(self, value: str) -> None:
        # Only needed to tell "moved back" from "removed"; a bounded window is enough.
        if len(self._seen) >= 100_000:
            self._seen.clear()
        self._seen.add(value)
