"""The export file formats: CSV (optionally with a UTF-8 BOM for Excel) and XLSX.

Both write the columns our own import reads back, and both apply OWASP's CSV-injection
rule (``guard_formula``): a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
return gets a leading ``'``; the import strips exactly that prefix again.

CSV is produced batch by batch as bytes: nothing but the current batch is held. On
PostgreSQL the database writes each batch's lines (``CSV_LINE_SQL``, the guard included);
elsewhere ``csv.writer`` does (``csv_rows``); the bytes are the same, which tests/exports
checks. XLSX is a zip whose directory comes last, so openpyxl's write-only mode streams the
rows into a temporary file (``XlsxWriter``), which is then streamed to storage.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Sequence
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from app.transfers.csv_reader import guard_formula

HEADER = (
    "name",
    "email",
    "phone",
    "organization",
    "job_title",
    "notes",
    "created_at",
    "updated_at",
    "slug",
)
BOM = b"\xef\xbb\xbf"
CSV = "csv"
XLSX = "xlsx"
FORMATS = (CSV, XLSX)
CONTENT_TYPES = {
    CSV: "text/csv; charset=utf-8",
    XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


# First characters after which ``guard_formula`` may add its apostrophe: a spreadsheet may
# run a cell starting with one of "=+-@\t\r", and "'" leads to such a cell once the import
# strips its guard. Every other cell is written as it is, without calling the guard.
_MAY_NEED_GUARD = frozenset("=+-@\t\r'")
# The cells the guard applies to (the times and the slug never start with a trigger).
GUARDED = frozenset(HEADER[:6])
_FIRST_CODES = ", ".join(str(ord(first)) for first in sorted(_MAY_NEED_GUARD))


def row_values(row: Sequence[Any]) -> tuple[str, ...]:
    """One export row (``ExportBatch``: the cells in HEADER order, times already text) as
    the cells to write, formula-guarded. Inlined checks: this runs once per row."""
    name, email, phone, organization, job_title, notes, created, updated, slug = row[:9]
    guard, triggers = guard_formula, _MAY_NEED_GUARD
    return (
        guard(name) if name and name[0] in triggers else name or "",
        guard(email) if email and email[0] in triggers else email or "",
        guard(phone) if phone and phone[0] in triggers else phone or "",
        guard(organization) if organization and organization[0] in triggers else organization or "",
        guard(job_title) if job_title and job_title[0] in triggers else job_title or "",
        guard(notes) if notes and notes[0] in triggers else notes or "",
        created,
        updated,
        slug,
    )


def _csv_cell_sql(column: str, guarded: bool) -> str:
    """PostgreSQL: one cell of ``column`` as ``csv.writer`` writes it after ``row_values``."""
    value = column
    if guarded:
        # guard_formula's rule (apostrophes, then a trigger: one more apostrophe in front),
        # its regular expression only for a cell whose first character may need it.
        value = (
            f"CASE WHEN ascii({column}) IN ({_FIRST_CODES}) "
            f"AND {column} ~ E'^''*[-=+@\\t\\r]' THEN '''' || {column} ELSE {column} END"
        )
    # Quoted, quotes doubled, when it holds the delimiter, a quote, CR or LF, as csv.writer
    # does (the guard's apostrophe never changes that); NULL is an empty cell.
    return (
        f"CASE WHEN strpos({column}, ',') > 0 OR strpos({column}, '\"') > 0 "
        f"OR strpos({column}, E'\\n') > 0 OR strpos({column}, E'\\r') > 0 "
        f"THEN '\"' || replace({value}, '\"', '\"\"') || '\"' ELSE coalesce({value}, '') END"
    )


# PostgreSQL: the CSV line of one export row over the columns of ``export_select`` (named
# as HEADER, the times already ISO 8601 text), CRLF included, exactly as ``csv_rows``
# writes it. Made in the database, a batch of lines costs no Python per row;
# tests/exports compares the two byte for byte.
CSV_LINE_SQL = (
    " || ',' || ".join(
        name if name in ("created_at", "updated_at") else _csv_cell_sql(name, name in GUARDED)
        for name in HEADER
    )
    + " || E'\\r\\n'"
)


def csv_rows(rows: Iterable[Sequence[Any]]) -> bytes:
    """Export rows (``ExportBatch``) as CSV lines, UTF-8."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(map(row_values, rows))
    return buffer.getvalue().encode("utf-8")


class CsvWriter:
    """The file's start: the header line (RFC 4180 through ``csv.writer``: CRLF line ends,
    quotes doubled), UTF-8, after a BOM if asked; the lines come from ``csv_rows`` or
    ``CSV_LINE_SQL``."""

    def __init__(self, *, bom: bool = False) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)
        self._bom = bom

    def header(self) -> bytes:
        self._writer.writerow(HEADER)
        return (BOM if self._bom else b"") + self._take()

    def _take(self) -> bytes:
        data = self._buffer.getvalue().encode("utf-8")
        self._buffer.seek(0)
        self._buffer.truncate()
        return data


def _xlsx_cell(value: str) -> str:
    # XML 1.0 cannot carry most control characters; openpyxl refuses them.
    return ILLEGAL_CHARACTERS_RE.sub("", value)


class XlsxWriter:
    """openpyxl in write-only mode: rows go to disk as they come, never held in memory."""

    def __init__(self) -> None:
        self._book = Workbook(write_only=True)
        self._sheet: Any = self._book.create_sheet("Customers")
        self._sheet.append(list(HEADER))

    def batch(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self._sheet.append([_xlsx_cell(v) for v in row_values(row)])

    def finish(self) -> IO[bytes]:
        """The finished file, open at its start; close it when it has been stored."""
        handle = tempfile.TemporaryFile(prefix="crm-export-", suffix=".xlsx")  # noqa: SIM115
        try:
            self._book.save(handle)
            handle.seek(0)
        except BaseException:
            handle.close()
            raise
        return handle
