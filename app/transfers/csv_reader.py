"""Reading uploaded customer files: what a file is (``sniff``) and its rows (``iter_rows``).

Both work on bytes and never hold more than one record (bounded) in memory. The reader
splits the byte stream into physical lines itself, counting their exact sizes, and feeds
them to the standard ``csv`` module; so every row knows the byte offset where the next
record starts, and an import killed at any moment resumes from there with
``iter_rows(..., start_offset=row.byte_offset_after, start_line=row.next_line)``.

A problem with the whole file raises a ``CsvError`` (see ``app.transfers.errors``); a
problem with one record is reported on that row (``Row.error``, in words, naming the line)
and reading goes on with the next one.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, AnyStr, Generic

from app.transfers.errors import EmptyFile, NoHeaderFound, NotACsvFile, TooManyColumns

SNIFF_BYTES = 64 * 1024  # what the mapping page reads of a file
MAX_SNIFF_BYTES = 1024 * 1024  # sniff_file reads up to this much when lines are very long
MAX_FIELD_BYTES = 1024 * 1024
MAX_RECORD_BYTES = 8 * 1024 * 1024  # beyond this a record is skipped unread: memory stays flat
MAX_COLUMNS = 10_000
MAX_EXTRA_COLUMNS = 50
PREVIEW_ROWS = 5
DELIMITERS = (",", ";", "\t", "|")  # in order of preference when the scores tie

ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-16-le": "UTF-16 (little-endian)",
    "utf-16-be": "UTF-16 (big-endian)",
    "cp1252": "Windows-1252",
}
DELIMITER_LABELS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}

_CHUNK = 256 * 1024
# The csv module's own limit is replaced by ours (MAX_FIELD_BYTES, MAX_RECORD_BYTES), which
# report the row instead of stopping the file.
_CSV_FIELD_LIMIT = 2**31 - 1
_MB = 1024 * 1024

_SAVE_AS_CSV = (
    "Export your contacts as a CSV file (comma- or semicolon-separated text) and import that."
)
_EXCEL_SAVE_AS = "In Excel, use File → Save As → CSV UTF-8, then import that file."


@dataclass(frozen=True)
class FileFormat:
    """What ``sniff`` found out. Plain data: ``dataclasses.asdict`` and ``FileFormat(**d)``
    round-trip it through JSON (e.g. the transfer's options)."""

    encoding: str  # a Python codec name: utf-8, utf-16-le, utf-16-be or cp1252
    delimiter: str
    header_line_index: int  # 0-based physical line of the header (preamble lines before it)
    header: list[str]
    preview_rows: list[list[str]]  # the first rows after the header, as read
    has_bom: bool
    line_ending: str  # the most common one: "\r\n", "\n" or "\r"
    data_offset: int  # byte offset where the first record after the header starts
    data_line: int  # 1-based physical line number at data_offset

    @property
    def encoding_label(self) -> str:
        return ENCODING_LABELS.get(self.encoding, self.encoding)

    @property
    def delimiter_label(self) -> str:
        return DELIMITER_LABELS.get(self.delimiter, repr(self.delimiter))


@dataclass(frozen=True, slots=True)
class Row:
    """One record of the file. ``error`` (in words, naming the line) means: do not import it."""

    line: int  # 1-based physical line where the record starts
    values: list[str]
    error: str | None
    byte_offset_after: int  # where the next record starts: a safe place to resume from
    next_line: int  # the physical line number at byte_offset_after


# ----------------------------------------------------------------------------- formulas

_GUARD_TRIGGER = "=+-@\t\r"
# Export: a value that starts with a trigger, or with apostrophes and then a trigger, gets one
# more apostrophe; import: one apostrophe comes off a value of apostrophes then a trigger. The
# apostrophes-first case makes the round trip exact for values like "'=x".
_NEEDS_GUARD = re.compile(r"'*[=+\-@\t\r]")
_GUARDED = re.compile(r"'+[=+\-@\t\r]")


def guard_formula(value: str) -> str:
    """The export side of OWASP's CSV-injection rule: spreadsheets won't run the cell."""
    return "'" + value if _NEEDS_GUARD.match(value) else value


def strip_formula_guard(value: str) -> str:
    """The import side: ``strip_formula_guard(guard_formula(v)) == v`` for every string."""
    return value[1:] if _GUARDED.match(value) else value


# ----------------------------------------------------------------------------- lines


@dataclass(slots=True)
class _Line:
    text: str
    nbytes: int  # its exact size in the file, terminator (and a leading BOM) included
    problem: str | None = None  # e.g. "is not valid UTF-8: ...", completed with "line N "
    too_long: bool = False  # longer than the limit: text is empty, the bytes were skipped


class _Lines(Generic[AnyStr]):
    """Physical lines, ended by CRLF, LF or a lone CR, as ``io`` with ``newline=""`` sees them,
    each with its exact size in bytes. A line longer than ``max_line_bytes`` is skipped as
    it streams by, so memory stays bounded."""

    _eol: re.Pattern[AnyStr]
    _cr: AnyStr
    _bom: AnyStr

    def __init__(
        self,
        stream: IO[bytes],
        encoding: str,
        *,
        max_line_bytes: int,
        partial_tail: bool = True,
        skip_bom: bool = False,
    ) -> None:
        self._stream = stream
        self._encoding = encoding
        self._max = max_line_bytes
        # False for the head of a longer file: its last line may be cut short; drop it.
        self._partial_tail = partial_tail
        self._skip_bom = skip_bom

    def _read(self) -> AnyStr | None:
        raise NotImplementedError

    def _make(self, piece: AnyStr, extra_bytes: int) -> _Line:
        raise NotImplementedError

    def _size(self, piece: AnyStr) -> int:
        raise NotImplementedError

    def _tail(self) -> tuple[int, str | None]:
        """Bytes left undecoded at the end of the file, and what is wrong with them."""
        return 0, None

    def __iter__(self) -> Iterator[_Line]:
        buf = self._read()
        if buf is None:
            return
        eof = False
        pos = scan = 0
        extra = 0  # bytes that belong to the next line without being part of its text
        if self._skip_bom:
            while len(buf) < len(self._bom) and not eof:
                more = self._read()
                if more is None:
                    eof = True
                else:
                    buf += more
            if buf.startswith(self._bom):
                pos = scan = len(self._bom)
                extra = self._size(self._bom)
        skipped = -1  # >= 0 while skipping an overlong line: the bytes skipped so far

        while True:
            found = self._eol.search(buf, scan)
            if found is not None:
                end = found.end()
                if end == len(buf) and found.group() == self._cr:
                    # A CR at the end of what we have: the LF of a CRLF may follow.
                    if not eof:
                        scan = found.start()
                        more = self._read()
                        if more is None:
                            eof = True
                        else:
                            buf = buf[pos:] + more
                            scan -= pos
                            pos = 0
                        continue
                    if not self._partial_tail:
                        return
                if skipped >= 0:
                    yield _Line("", extra + skipped + self._size(buf[pos:end]), too_long=True)
                    skipped = -1
                else:
                    yield self._make(buf[pos:end], extra)
                extra = 0
                pos = scan = end
                continue
            if eof:
                tail_bytes, tail_problem = self._tail()
                if not self._partial_tail:
                    return
                if skipped >= 0:
                    rest = extra + skipped + self._size(buf[pos:]) + tail_bytes
                    yield _Line("", rest, too_long=True)
                elif pos < len(buf) or tail_bytes:
                    line = self._make(buf[pos:], extra)
                    if tail_bytes:
                        line.text += "\ufffd"
                        line.nbytes += tail_bytes
                        line.problem = line.problem or tail_problem
                    yield line
                return
            if skipped >= 0 or self._size(buf[pos:]) > self._max:
                # Keep counting what streams by, keep none of it.
                skipped = max(skipped, 0) + self._size(buf[pos:])
                pos = scan = len(buf)
            else:
                scan = len(buf)
            more = self._read()
            if more is None:
                eof = True
            else:
                buf = buf[pos:] + more
                scan -= pos
                pos = 0


class _ByteLines(_Lines[bytes]):
    """UTF-8 and Windows-1252: CR, LF and '"' are single bytes that never occur inside a
    multi-byte character, so lines are split as bytes and decoded one by one, each with its
    own verdict."""

    _eol = re.compile(rb"\r\n?|\n")
    _cr = b"\r"
    _bom = codecs.BOM_UTF8

    def _read(self) -> bytes | None:
        return self._stream.read(_CHUNK) or None

    def _size(self, piece: bytes) -> int:
        return len(piece)

    def _make(self, piece: bytes, extra_bytes: int) -> _Line:
        try:
            text = piece.decode(self._encoding)
        except UnicodeDecodeError as exc:
            bad = piece[exc.start]
            if self._encoding == "utf-8":
                problem = (
                    f"is not valid UTF-8: the byte 0x{bad:02X} at position {exc.start + 1} is "
                    'not part of a character. Save the file as "CSV UTF-8" and import it again'
                )
            else:
                problem = (
                    f"contains the byte 0x{bad:02X} (at position {exc.start + 1}), which is "
                    "not a Windows-1252 character"
                )
            return _Line(piece.decode(self._encoding, "replace"), len(piece) + extra_bytes, problem)
        if "\x00" in text:
            return _Line(text, len(piece) + extra_bytes, "contains a NUL character")
        return _Line(text, len(piece) + extra_bytes)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class _Utf16Lines(_Lines[str]):
    """UTF-16: a CR or LF byte may be half of another character, so lines are split after
    decoding; each line's size is its encoded length (lone surrogates pass through intact
    so that the count stays exact, and are reported)."""

    _eol = re.compile(r"\r\n?|\n")
    _cr = "\r"
    _bom = "\ufeff"

    def __init__(self, stream: IO[bytes], encoding: str, **options: Any) -> None:
        super().__init__(stream, encoding, **options)
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="surrogatepass")

    def _read(self) -> str | None:
        raw = self._stream.read(_CHUNK)
        return self._decoder.decode(raw) if raw else None

    def _size(self, piece: str) -> int:
        return len(piece.encode(self._encoding, "surrogatepass"))

    def _tail(self) -> tuple[int, str | None]:
        pending = self._decoder.getstate()[0]
        if not pending:
            return 0, None
        return len(pending), "ends with an incomplete UTF-16 character"

    def _make(self, piece: str, extra_bytes: int) -> _Line:
        nbytes = self._size(piece) + extra_bytes
        if _LONE_SURROGATE.search(piece):
            return _Line(_LONE_SURROGATE.sub("\ufffd", piece), nbytes, "is not valid UTF-16")
        if "\x00" in piece:
            return _Line(piece, nbytes, "contains a NUL character")
        return _Line(piece, nbytes)


def _lines(
    stream: IO[bytes],
    encoding: str,
    *,
    max_line_bytes: int,
    partial_tail: bool = True,
    skip_bom: bool = False,
) -> _Lines[bytes] | _Lines[str]:
    kind: type[_Lines[bytes]] | type[_Lines[str]]
    kind = _Utf16Lines if encoding.startswith("utf-16") else _ByteLines
    return kind(
        stream,
        encoding,
        max_line_bytes=max_line_bytes,
        partial_tail=partial_tail,
        skip_bom=skip_bom,
    )


# ----------------------------------------------------------------------------- records


class _RecordTooLarge(Exception):
    def __init__(self, last_line: int, *, line_too_long: bool) -> None:
        super().__init__(last_line)
        self.last_line = last_line
        self.line_too_long = line_too_long


class _Feeder:
    """The iterator ``csv.reader`` pulls lines from. The reader asks for the next line only
    when a record needs it, so after each record the bytes handed out so far end exactly at
    the record's end."""

    def __init__(self, lines: Iterator[_Line], *, first_line: int, max_record_bytes: int) -> None:
        self._lines = lines
        self._max = max_record_bytes
        self.next_line = first_line  # the number of the next line to hand out
        self.consumed = 0  # bytes handed out so far
        self.record_bytes = 0
        self.problem: str | None = None
        self.eof = False

    def start_record(self) -> int:
        self.record_bytes = 0
        self.problem = None
        self.eof = False
        return self.next_line

    def __iter__(self) -> _Feeder:
        return self

    def __next__(self) -> str:
        try:
            line = next(self._lines)
        except StopIteration:
            self.eof = True
            raise
        number = self.next_line
        self.next_line += 1
        self.consumed += line.nbytes
        self.record_bytes += line.nbytes
        if line.problem is not None and self.problem is None:
            self.problem = f"line {number} {line.problem}"
        if line.too_long:
            raise _RecordTooLarge(number, line_too_long=True)
        if self.record_bytes > self._max:
            raise _RecordTooLarge(number, line_too_long=False)
        return line.text


@dataclass(slots=True)
class _Record:
    line: int
    values: list[str]
    problem: str | None
    offset_after: int
    next_line: int
    unterminated: bool = False  # the file ended inside a quoted field


def _size_words(nbytes: int) -> str:
    if nbytes % _MB == 0:
        return f"{nbytes // _MB} MB"
    if nbytes % 1024 == 0:
        return f"{nbytes // 1024} KB"
    return f"{nbytes:,} bytes"


def _records(
    lines: Iterator[_Line],
    *,
    delimiter: str,
    first_line: int,
    base_offset: int,
    max_record_bytes: int,
) -> Iterator[_Record]:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    feeder = _Feeder(lines, first_line=first_line, max_record_bytes=max_record_bytes)
    # strict=False: a stray quote inside a value is kept as text, as Excel does.
    reader = csv.reader(feeder, delimiter=delimiter, quotechar='"', doublequote=True, strict=False)
    while True:
        start = feeder.start_record()
        try:
            values = next(reader)
        except StopIteration:
            return
        except _RecordTooLarge as exc:
            size = _size_words(max_record_bytes)
            if exc.last_line == start:
                skipped = f"line {start} is larger than {size} and was skipped"
            else:
                skipped = (
                    f"line {start}: the row is larger than {size} (is a quoted field never "
                    f"closed?); lines {start} to {exc.last_line} were skipped"
                )
            yield _Record(start, [], skipped, base_offset + feeder.consumed, feeder.next_line)
            continue
        except csv.Error as exc:  # not expected with strict=False; reported, not raised
            yield _Record(
                start,
                [],
                f"line {start} could not be read as CSV ({exc})",
                base_offset + feeder.consumed,
                feeder.next_line,
            )
            continue
        problem = feeder.problem
        if feeder.eof:
            # The reader asked for more lines than the file has: a quote was left open.
            problem = f"line {start}: a quoted field is never closed"
        yield _Record(
            start, values, problem, base_offset + feeder.consumed, feeder.next_line, feeder.eof
        )


def _has_values(values: Sequence[str]) -> bool:
    return not "".join(values).isspace() and any(values)


# ----------------------------------------------------------------------------- rows


def iter_rows(
    stream: IO[bytes],
    fmt: FileFormat,
    *,
    start_offset: int | None = None,
    start_line: int | None = None,
    stream_offset: int = 0,
    max_field_bytes: int = MAX_FIELD_BYTES,
    max_extra_columns: int = MAX_EXTRA_COLUMNS,
    max_columns: int = MAX_COLUMNS,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Iterator[Row]:
    """The data rows of a file ``sniff`` described, streaming, blank rows left out.

    Starts after the header, or at ``start_offset``/``start_line`` taken from a row's
    ``byte_offset_after``/``next_line`` (a resume). A seekable stream is moved there; a
    non-seekable one is read forward from ``stream_offset``, the file offset of its current
    position (e.g. an object-storage range request that begins at ``start_offset``).
    """
    if (start_offset is None) != (start_line is None):
        raise ValueError("start_offset and start_line go together")
    offset = fmt.data_offset if start_offset is None else start_offset
    line_number = fmt.data_line if start_line is None else start_line
    if offset < fmt.data_offset or line_number < fmt.data_line:
        raise ValueError("a resume point cannot lie before the first data row")
    if stream.seekable():
        stream.seek(offset)
    else:
        _skip_bytes(stream, offset - stream_offset)

    width = len(fmt.header)
    lines = iter(_lines(stream, fmt.encoding, max_line_bytes=max_record_bytes))
    records = _records(
        lines,
        delimiter=fmt.delimiter,
        first_line=line_number,
        base_offset=offset,
        max_record_bytes=max_record_bytes,
    )
    for record in records:
        error = record.problem or _row_problem(
            record, fmt, width, max_field_bytes, max_extra_columns, max_columns
        )
        if error is None and not _has_values(record.values):
            continue
        yield Row(record.line, record.values, error, record.offset_after, record.next_line)


def _row_problem(
    record: _Record,
    fmt: FileFormat,
    width: int,
    max_field_bytes: int,
    max_extra_columns: int,
    max_columns: int,
) -> str | None:
    values = record.values
    count = len(values)
    if count > width:
        if count > max_columns or count > width + max_extra_columns:
            return f"line {record.line} has {count:,} values, but the header has {width:,} columns"
        if _has_values(values[width:]):
            name = DELIMITER_LABELS.get(fmt.delimiter, "separator")
            return (
                f"line {record.line} has {count:,} values, but the header has {width:,} "
                f"columns (does a value contain a {name} without quotes around it?)"
            )
    # A character is at most 4 bytes in UTF-8: shorter values need no measuring.
    if values and max(map(len, values)) * 4 > max_field_bytes:
        for index, value in enumerate(values):
            if len(value.encode("utf-8", "surrogatepass")) > max_field_bytes:
                column = f"column {index + 1}"
                if index < width and fmt.header[index]:
                    column += f' ("{fmt.header[index]}")'
                size = _size_words(max_field_bytes)
                return f"line {record.line}: the field in {column} is larger than {size}"
    return None


def _skip_bytes(stream: IO[bytes], count: int) -> None:
    if count < 0:
        raise ValueError("a non-seekable stream cannot go back")
    while count > 0:
        chunk = stream.read(min(count, _CHUNK))
        if not chunk:
            return
        count -= len(chunk)


# ----------------------------------------------------------------------------- sniffing

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"\x1f\x8b", "a gzip-compressed file (.gz)"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"{\\rtf", "a rich-text document (RTF)"),
)
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SEPARATORS_AND_SPACE = str.maketrans(dict.fromkeys(',;\t|" \r\n\f\v'))
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ESCAPED = re.compile("[\udc80-\udcff]")
_SEP_HINT = re.compile(r"sep=(.)[ \t]*", re.IGNORECASE)
_EMAIL_LIKE = re.compile(r"[^@\s]@[^@\s]+\.[^@\s]")
_NUMERIC = re.compile(r"[\s\d.,:/+\-()%€$£#]*\d[\s\d.,:/+\-()%€$£#]*")


class _HeadTooShort(NoHeaderFound):
    """The head holds too little of a longer file; ``sniff_file`` reads more and tries again."""


def _not_csv(what: str, advice: str = _SAVE_AS_CSV) -> NotACsvFile:
    return NotACsvFile(f"This looks like {what}, not a CSV file. {advice}")


def _raise_if_known_binary(head: bytes) -> None:
    if head.startswith(_ZIP_MAGIC):
        if b"xl/" in head:
            raise _not_csv("an Excel workbook (.xlsx)", _EXCEL_SAVE_AS)
        if b"opendocument.spreadsheet" in head:
            raise _not_csv(
                "an OpenDocument spreadsheet (.ods)",
                "In LibreOffice, use File → Save As → Text CSV, then import that file.",
            )
        if b"Index/" in head:
            raise _not_csv(
                "an Apple Numbers spreadsheet",
                "In Numbers, use File → Export To → CSV, then import that file.",
            )
        if b"word/" in head:
            raise _not_csv("a Word document (.docx)")
        if b"ppt/" in head:
            raise _not_csv("a PowerPoint presentation (.pptx)")
        raise _not_csv(
            "a ZIP archive",
            "If it holds a CSV file, unzip it and import that file.",
        )
    if head.startswith(_OLE2):
        raise _not_csv("an Excel 97-2003 workbook (.xls)", _EXCEL_SAVE_AS)
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            raise _not_csv(what)
    text_start = head[:512].removeprefix(codecs.BOM_UTF8).lstrip().lower()
    if text_start.startswith(b"begin:vcard"):
        raise NotACsvFile(
            "This is a vCard file (.vcf), not a CSV file. Export your contacts as CSV "
            "instead (or convert the vCard file to CSV), then import that file."
        )
    if text_start.startswith((b"<!doctype html", b"<html")):
        raise _not_csv("a web page (HTML)")
    if text_start.startswith(b"<?xml"):
        if b"urn:schemas-microsoft-com:office:spreadsheet" in head:
            raise _not_csv("an Excel XML spreadsheet", _EXCEL_SAVE_AS)
        raise _not_csv("an XML file")


def _bomless_utf16(head: bytes) -> str | None:
    sample = head[: min(len(head), 8192) // 2 * 2]
    units = len(sample) // 2
    if units < 2:
        return None
    even_zeros = sample[0::2].count(0)
    odd_zeros = sample[1::2].count(0)
    # Mostly ASCII text: one byte of each unit is zero, always the same one.
    if odd_zeros * 10 >= units * 7 and even_zeros * 10 <= units:
        return "utf-16-le"
    if even_zeros * 10 >= units * 7 and odd_zeros * 10 <= units:
        return "utf-16-be"
    return None


def _detect_encoding(head: bytes, complete: bool) -> tuple[str, bool]:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", True
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise NotACsvFile(
            "This file is in UTF-32, which is not supported. Save it as CSV UTF-8 and "
            "import that file."
        )
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", True
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", True
    if head.count(0) * 4 > len(head):
        guess = _bomless_utf16(head)
        if guess is None:
            raise _not_csv("a binary file")
        return guess, False
    try:
        # Not final for a head: a character cut in two at its end is still UTF-8.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8", False
    # Invalid UTF-8 somewhere. Real UTF-8 text with a few damaged bytes still has many
    # valid multi-byte characters; Windows-1252 text almost never forms one by chance.
    text = head.decode("utf-8", "surrogateescape")
    bad = len(_ESCAPED.findall(text))
    good = sum(1 for char in text if char > "\x7f") - bad
    return ("utf-8" if good > bad else "cp1252"), False


def _line_ending(lines: Sequence[_Line]) -> str:
    endings: Counter[str] = Counter()
    for line in lines:
        text = line.text
        if text.endswith("\r\n"):
            endings["\r\n"] += 1
        elif text.endswith("\n"):
            endings["\n"] += 1
        elif text.endswith("\r"):
            endings["\r"] += 1
    return endings.most_common(1)[0][0] if endings else "\n"


def _looks_like_header(values: Sequence[str]) -> bool:
    cells = [value.strip() for value in values]
    named = [cell for cell in cells if cell]
    if not named or (len(named) * 2 <= len(cells) and len(cells) > 1):
        return False
    if any(len(cell) > 200 or _EMAIL_LIKE.search(cell) for cell in named):
        return False
    # Column names are words ("#" may name a column, but not most of them).
    if sum(1 for cell in named if any(char.isalnum() for char in cell)) * 2 < len(named):
        return False
    numbers = sum(1 for cell in named if _NUMERIC.fullmatch(cell))
    return numbers * 2 < len(named)


def _dominant_width(records: Sequence[_Record]) -> tuple[int, int]:
    """The field count most records share (a wider one on a tie) and how many share it.
    Single-field records are preamble-like and only count when nothing else exists."""
    widths = Counter(len(record.values) for record in records if len(record.values) >= 2)
    if not widths:
        return 1, 0
    width, count = max(widths.items(), key=lambda item: (item[1], item[0]))
    return width, count


def _find_header(records: Sequence[_Record], width: int) -> int | None:
    for index, record in enumerate(records):
        if not _looks_like_header(record.values):
            continue
        own = len(record.values)
        if own == width:
            return index
        if 1 <= own < width:
            # Rows with trailing separators the header lacks ("a,b,c," under "A,B,C").
            following = [r for r in records[index + 1 :] if len(r.values) == width]
            if following and not any(_has_values(r.values[own:]) for r in following):
                return index
    for index, record in enumerate(records):
        if _looks_like_header(record.values) and len(record.values) >= min(width, 2):
            return index
    return None


def sniff(head: bytes, *, complete: bool | None = None) -> FileFormat:
    """Describe a file from its start: encoding, delimiter, header, the first rows.

    ``complete`` says whether ``head`` is the whole file; by default a head shorter than
    ``SNIFF_BYTES`` is taken to be. Of an incomplete head the cut-off last line is not used.
    Raises ``EmptyFile``, ``NotACsvFile``, ``NoHeaderFound`` or ``TooManyColumns``.
    """
    if complete is None:
        complete = len(head) < SNIFF_BYTES
    return _sniff(head, complete=complete, can_grow=False)


def _sniff(head: bytes, *, complete: bool, can_grow: bool) -> FileFormat:
    if not head.strip():
        if complete:
            raise EmptyFile("The file is empty.")
        raise NoHeaderFound("The start of the file is nothing but blank space.")
    _raise_if_known_binary(head)
    encoding, has_bom = _detect_encoding(head, complete)
    text = head.decode(encoding, "replace").lstrip("\ufeff")
    if not text.strip():
        if complete:
            raise EmptyFile("The file is empty.")
        raise NoHeaderFound("The start of the file is nothing but blank space.")
    controls = len(_CONTROL.findall(text))
    # Text has next to none; a stray one in a small file is the reader's to report.
    if controls * 10 > len(text) or (controls > 10 and controls * 100 > len(text)):
        raise _not_csv("a binary file")
    if complete and not text.translate(_SEPARATORS_AND_SPACE):
        raise EmptyFile("The file is empty: it has separators but no values.")

    lines = list(
        _lines(
            io.BytesIO(head),
            encoding,
            max_line_bytes=len(head) + 1,
            partial_tail=complete,
            skip_bom=has_bom,
        )
    )
    if not lines:
        raise _HeadTooShort(
            f"Could not find the column names: the first line is longer than "
            f"{_size_words(len(head) // 1024 * 1024 or len(head))}. Is this a CSV file?"
        )
    return _choose_format(lines, encoding, has_bom, complete, can_grow)


def _choose_format(
    lines: list[_Line], encoding: str, has_bom: bool, complete: bool, can_grow: bool
) -> FileFormat:
    skip = 0
    candidates: Sequence[str] = DELIMITERS
    hint = _SEP_HINT.fullmatch(lines[0].text.rstrip("\r\n"))
    if hint is not None and hint.group(1) in DELIMITERS:
        # Excel's "sep=;" first line names the delimiter.
        candidates = (hint.group(1),)
        skip = 1
    base_offset = sum(line.nbytes for line in lines[:skip])

    best: tuple[tuple[int, bool, int, int], str, list[_Record], int, int | None] | None = None
    for priority, delimiter in enumerate(candidates):
        records = [
            record
            for record in _records(
                iter(lines[skip:]),
                delimiter=delimiter,
                first_line=skip + 1,
                base_offset=base_offset,
                max_record_bytes=MAX_SNIFF_BYTES * 64,
            )
            if (complete or not record.unterminated) and _has_values(record.values)
        ]
        width, count = _dominant_width(records)
        found = _find_header(records, width)
        score = (count, found is not None, width, -priority)
        if best is None or score > best[0]:
            best = (score, delimiter, records, width, found)
    assert best is not None  # candidates is never empty
    _score, delimiter, records, _width, header_index = best

    if not records:
        if complete:
            raise EmptyFile("The file is empty: it has separators but no values.")
        raise _HeadTooShort("Could not find the column names in the start of the file.")
    if not complete and len(records) < 2 and can_grow:
        # Only the header fits: read more to see a first row (and to be sure of the header).
        raise _HeadTooShort(
            "Could not find the column names and a first row in the start of the file: "
            "its lines are very long. Is this a CSV file?"
        )
    if header_index is None:
        raise NoHeaderFound(
            "Could not find the column names. The first row of the file should name the "
            "columns, for example: Name,Email,Phone."
        )
    header_record = records[header_index]
    if len(header_record.values) > MAX_COLUMNS:
        raise TooManyColumns(
            f"The header has {len(header_record.values):,} columns; an import takes at most "
            f"{MAX_COLUMNS:,}."
        )
    header = [value.strip().lstrip("\ufeff").strip() for value in header_record.values]
    preview = [record.values for record in records[header_index + 1 :][:PREVIEW_ROWS]]
    return FileFormat(
        encoding=encoding,
        delimiter=delimiter,
        header_line_index=header_record.line - 1,
        header=header,
        preview_rows=preview,
        has_bom=has_bom,
        line_ending=_line_ending(lines),
        data_offset=header_record.offset_after,
        data_line=header_record.next_line,
    )


def sniff_file(stream: IO[bytes], *, max_bytes: int = MAX_SNIFF_BYTES) -> FileFormat:
    """``sniff`` on the start of a binary stream (from its beginning): reads ``SNIFF_BYTES``,
    more (up to ``max_bytes``) only when the first lines do not fit."""
    if stream.seekable():
        stream.seek(0)
    want = SNIFF_BYTES
    head = _read_up_to(stream, want + 1)
    while True:
        complete = len(head) <= want
        try:
            return _sniff(head, complete=complete, can_grow=want < max_bytes)
        except _HeadTooShort:
            if complete or want >= max_bytes:
                raise
        head += _read_up_to(stream, want)
        want *= 2


def _read_up_to(stream: IO[bytes], count: int) -> bytes:
    parts = []
    while count > 0:
        chunk = stream.read(count)
        if not chunk:
            break
        parts.append(chunk)
        count -= len(chunk)
    return b"".join(parts)
