"""What can go wrong with an uploaded file before any row is read, in words a person can act on.

Row-level problems are not exceptions: the reader reports them on the row (``Row.error``)
and the import goes on with the next row.
"""

from __future__ import annotations

# Not raised: an import whose reader yields no row at all shows this.
NO_ROWS_MESSAGE = "The file has a header but no rows."


class CsvError(Exception):
    """The file cannot be imported as a whole. ``message`` is for the person who uploaded it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EmptyFile(CsvError):
    """No bytes, or nothing but whitespace and empty cells."""


class NotACsvFile(CsvError):
    """An image, a PDF, a workbook, an archive, a vCard or other binary data."""


class NoHeaderFound(CsvError):
    """No line in the start of the file looks like the column names."""


class TooManyColumns(CsvError):
    """The header names more columns than an import handles."""


class MappingError(ValueError):
    """A mapping chosen by a person or an API client names unknown columns or targets."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems
