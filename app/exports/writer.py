"""The export file formats: CSV (optionally with a UTF-8 BOM for Excel) and XLSX.

Both write the columns our own import reads back, and both apply OWASP's CSV-injection
rule (``guard_formula``): a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
return gets a leading ``'``; the import strips exactly that prefix again.

CSV is produced batch by batch as bytes (``CsvWriter.batch``): nothing but the current
batch is held. XLSX is a zip whose directory comes last, so openpyxl's write-only mode
streams the rows into a temporary file (``XlsxWriter``), which is then streamed to storage.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
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


# First characters a spreadsheet may run as a formula: only these cells need the guard.
_TRIGGERS = frozenset("=+-@\t\r")


def _text(value: str | None) -> str:
    if not value:
        return ""
    return guard_formula(value) if value[0] in _TRIGGERS else value


def _moment(value: Any) -> str:
    # PostgreSQL hands back aware datetimes; SQLite may hand back text.
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def row_values(row: Mapping[str, Any]) -> tuple[str, ...]:
    """One customers row (as the repository reads it) as the cells of a row, in HEADER
    order, formula-guarded."""
    return (
        _text(row["name"]),
        _text(row["email"]),
        _text(row["phone"]),
        _text(row["organization"]),
        _text(row["job_title"]),
        _text(row["notes"]),
        _moment(row["created_at"]),
        _moment(row["updated_at"]),
        row["slug"],
    )


class CsvWriter:
    """RFC 4180 CSV through ``csv.writer`` (CRLF line ends, quotes doubled), UTF-8."""

    def __init__(self, *, bom: bool = False) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)
        self._bom = bom

    def header(self) -> bytes:
        self._writer.writerow(HEADER)
        return (BOM if self._bom else b"") + self._take()

    def batch(self, rows: Iterable[Mapping[str, Any]]) -> bytes:
        self._writer.writerows(map(row_values, rows))
        return self._take()

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

    def batch(self, rows: Iterable[Mapping[str, Any]]) -> None:
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
