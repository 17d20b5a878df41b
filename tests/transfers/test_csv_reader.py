"""Reading uploaded files: sniffing, streaming rows, bad input, resuming, the formula guard."""

import csv
import dataclasses
import gzip
import io
import json
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.transfers import csv_reader
from app.transfers.csv_reader import (
    MAX_COLUMNS,
    SNIFF_BYTES,
    FileFormat,
    Row,
    guard_formula,
    iter_rows,
    sniff,
    sniff_file,
    strip_formula_guard,
)
from app.transfers.errors import (
    NO_ROWS_MESSAGE,
    CsvError,
    EmptyFile,
    NoHeaderFound,
    NotACsvFile,
    TooManyColumns,
)

FILES = Path(__file__).parent / "files"
MB = 1024 * 1024


def read(data: bytes, **options) -> tuple[FileFormat, list[Row]]:
    fmt = sniff_file(io.BytesIO(data))
    return fmt, list(iter_rows(io.BytesIO(data), fmt, **options))


def read_fixture(name: str) -> tuple[FileFormat, list[Row]]:
    return read((FILES / name).read_bytes())


class OneWayStream(io.RawIOBase):
    """A stream that cannot seek, like an object-storage download."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:
        chunk = self._inner.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# ----------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("name", "encoding", "delimiter", "header_line", "line_ending", "has_bom", "first_columns"),
    [
        ("google_contacts_old.csv", "utf-8", ",", 0, "\r\n", False, ["Name", "Given Name"]),
        ("google_contacts_new.csv", "utf-8", ",", 0, "\n", False, ["First Name", "Middle Name"]),
        ("outlook.csv", "utf-8", ",", 0, "\r\n", True, ["Title", "First Name"]),
        ("linkedin_connections.csv", "utf-8", ",", 3, "\n", False, ["First Name", "Last Name"]),
        ("hubspot_contacts.csv", "utf-8", ",", 0, "\r\n", False, ["Record ID", "First Name"]),
        ("salesforce_contacts.csv", "utf-8", ",", 0, "\r\n", False, ["Salutation", "First Name"]),
        ("apple_contacts.csv", "utf-8", ",", 0, "\r", False, ["First name", "Last name"]),
        ("excel_european.csv", "cp1252", ";", 1, "\r\n", False, ["Vorname", "Nachname"]),
        (
            "excel_unicode_text.txt",
            "utf-16-le",
            "\t",
            0,
            "\r\n",
            True,
            ["Full name", "Email address"],
        ),
        ("plain_english.csv", "utf-8", ",", 3, "\n", False, ["Full Name", "EMAIL_ADDRESS"]),
        ("crm_export.csv", "utf-8", ",", 0, "\r\n", False, ["name", "email"]),
    ],
)
def test_each_export_format_is_recognized(
    name, encoding, delimiter, header_line, line_ending, has_bom, first_columns
):
    fmt = sniff((FILES / name).read_bytes())

    assert fmt.encoding == encoding
    assert fmt.delimiter == delimiter
    assert fmt.header_line_index == header_line
    assert fmt.line_ending == line_ending
    assert fmt.has_bom is has_bom
    assert fmt.header[:2] == first_columns
    assert fmt.data_line == header_line + 2


def test_the_preview_holds_the_first_five_rows_as_read():
    lines = ["Name,Email,Notes"] + [
        f'Person {n},p{n}@example.com,"note {n}\nmore"' for n in range(9)
    ]
    fmt = sniff("\r\n".join(lines).encode())

    assert len(fmt.preview_rows) == 5
    assert fmt.preview_rows[0] == ["Person 0", "p0@example.com", "note 0\nmore"]
    assert fmt.preview_rows[4][0] == "Person 4"


def test_windows_1252_is_read_without_mojibake():
    fmt, rows = read_fixture("excel_european.csv")

    assert fmt.encoding_label == "Windows-1252"
    assert rows[0].values[:3] == ["Jürgen", "Weiß", "Bäckerei Weiß GmbH"]
    assert rows[0].values[6] == "12.500,00 €"
    assert rows[2].values[7] == "Kontakt über Messe „Süßwaren 2023“"
    # Excel's trailing ";;;;;;;" rows are blank, not rows.
    assert len(rows) == 3


def test_utf16_with_surrogate_pairs_and_embedded_newlines():
    _fmt, rows = read_fixture("excel_unicode_text.txt")

    assert [row.values[0] for row in rows] == [
        "山田 太郎",
        "Νίκος Παπαδόπουλος",
        "Fatima Zahra El Idrissi",
    ]
    assert rows[0].values[5] == "Met in Osaka 🎌"
    assert rows[2].values[5] == "Line one\r\nLine two 👍"
    assert rows[-1].byte_offset_after == (FILES / "excel_unicode_text.txt").stat().st_size


def test_utf16_big_endian_and_without_a_bom():
    text = "Name\tEmail\r\nRenée Faure\trenee@example.com\r\n"
    for data, encoding in [
        (b"\xfe\xff" + text.encode("utf-16-be"), "utf-16-be"),
        (text.encode("utf-16-le"), "utf-16-le"),
        (text.encode("utf-16-be"), "utf-16-be"),
    ]:
        fmt, rows = read(data)
        assert fmt.encoding == encoding
        assert rows[0].values == ["Renée Faure", "renee@example.com"]


def test_a_head_cut_inside_a_utf8_character_is_still_utf8():
    start = "Name,Email,Notes\nZoë,zoe@example.com,first\nRenée,r@example.com,".encode()
    # Pad so that the two bytes of the last "é" straddle the end of the head.
    pad = b"y" * (SNIFF_BYTES - len(start) - 1)
    data = start + pad + "é\nLast,last@example.com,z\n".encode()
    head = data[:SNIFF_BYTES]
    assert head.endswith(b"\xc3")  # the cut really splits a character

    fmt = sniff(head)
    assert fmt.encoding == "utf-8"
    assert sniff_file(io.BytesIO(data)).encoding == "utf-8"
    rows = list(iter_rows(io.BytesIO(data), fmt))
    assert [row.values[0] for row in rows] == ["Zoë", "Renée", "Last"]
    assert rows[1].values[2].endswith("yé")


def test_a_few_bad_bytes_in_a_utf8_file_do_not_make_it_windows_1252():
    data = (
        "Name,Email\nJosé,jose@example.com\nMüller,m@example.com\n".encode() + b"Bad\xff,b@x.io\n"
    )
    assert sniff(data).encoding == "utf-8"


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("Name;Email;Amount\nA;a@example.com;1,50\nB;b@example.com;2,75\n", ";"),
        ("Name\tEmail\nSmith, John\tjohn@example.com\nDoe, Jane\tjane@example.com\n", "\t"),
        ("Name|Email|Company\nAnn|ann@example.com|Ann, Bob & Co\nBo|bo@example.com|X\n", "|"),
        ('Name,Email\n"Lee; Kim",lee@example.com\n"Ruiz; Ana",ana@example.com\n', ","),
        ("Email\nann@example.com\nbob@example.com\n", ","),
    ],
)
def test_the_delimiter_is_the_one_the_lines_agree_on(text, delimiter):
    assert sniff(text.encode()).delimiter == delimiter


def test_excel_padded_preamble_rows_are_skipped():
    text = (
        "Contact report;;\r\nGenerated 02.01.2024;;\r\n;;\r\n"
        "Name;Email;Phone\r\nAnn;a@example.com;1\r\n"
    )
    fmt, rows = read(text.encode())

    assert fmt.header == ["Name", "Email", "Phone"]
    assert fmt.header_line_index == 3
    assert [row.line for row in rows] == [5]


def test_rows_with_trailing_separators_under_a_narrower_header():
    fmt, rows = read(b"Name,Email\nAnn,a@example.com,\nBob,b@example.com,\n")

    assert fmt.header == ["Name", "Email"]
    assert [row.error for row in rows] == [None, None]


def test_format_survives_json():
    fmt = sniff((FILES / "linkedin_connections.csv").read_bytes())
    assert FileFormat(**json.loads(json.dumps(dataclasses.asdict(fmt)))) == fmt


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "data", [b"", b"   \r\n\n\t  \n", b"\xef\xbb\xbf\r\n", b"\xff\xfe \x00\n\x00"]
)
def test_an_empty_file(data):
    with pytest.raises(EmptyFile, match="The file is empty"):
        sniff(data)


def test_a_file_of_only_separators_is_empty():
    with pytest.raises(EmptyFile):
        sniff(b",,,\r\n,,,\r\n")


def test_a_header_without_rows_reads_as_zero_rows():
    fmt, rows = read(b"Name,Email,Phone\r\n")

    assert fmt.header == ["Name", "Email", "Phone"]
    assert fmt.preview_rows == []
    assert rows == []
    assert NO_ROWS_MESSAGE == "The file has a header but no rows."


def test_a_header_without_a_line_end_reads_as_zero_rows():
    _fmt, rows = read(b"Name,Email")
    assert rows == []


def tiny_xlsx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
            'package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="'
            'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>',
        )
        book.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>",
        )
        book.writestr(
            "xl/workbook.xml",
            '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/'
            'spreadsheetml/2006/main"><sheets><sheet name="Contacts" sheetId="1" r:id="rId1"/>'
            "</sheets></workbook>",
        )
        book.writestr(
            "xl/worksheets/sheet1.xml",
            '<?xml version="1.0"?><worksheet><sheetData><row r="1"><c r="A1" t="inlineStr">'
            "<is><t>Name</t></is></c></row></sheetData></worksheet>",
        )
    return buffer.getvalue()


def zip_of(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01", "a PNG image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "a JPEG image"),
        (b"GIF89a\x01\x00\x01\x00\x80\x00\x00", "a GIF image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document"),
        (zip_of("contacts.csv", b"Name,Email\n"), "a ZIP archive"),
        (zip_of("word/document.xml", b"<w:document/>"), "a Word document"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "an Excel 97-2003 workbook (.xls)"),
        (gzip.compress(b"Name,Email\nA,a@example.com\n"), "gzip-compressed"),
        (bytes(range(256)) * 4, "a binary file"),
        (b"<!DOCTYPE html>\n<html><body><table></table></body></html>", "a web page"),
        (b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann Lee\r\nEND:VCARD\r\n", "vCard"),
    ],
)
def test_files_that_are_not_csv_say_what_they_are(data, words):
    with pytest.raises(NotACsvFile) as raised:
        sniff(data)
    assert words in raised.value.message
    assert "CSV" in raised.value.message


def test_an_xlsx_renamed_to_csv(tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_bytes(tiny_xlsx())
    assert zipfile.ZipFile(path).namelist()[0] == "[Content_Types].xml"

    with path.open("rb") as upload, pytest.raises(NotACsvFile) as raised:
        sniff_file(upload)
    assert raised.value.message == (
        "This looks like an Excel workbook (.xlsx), not a CSV file. In Excel, use File → "
        "Save As → CSV UTF-8, then import that file."
    )


def test_rows_of_data_without_a_header():
    with pytest.raises(NoHeaderFound, match="name the columns"):
        sniff(b"Ann Lee,ann@example.com\nBob Marsh,bob@example.com\n")


def test_invalid_utf8_is_a_row_error_naming_the_line():
    data = (
        "Name,Email,City\r\nJosé Ruiz,jose@example.com,Málaga\r\n".encode()
        + b"Bj\xf6rn Berg,bjorn@example.com,Malm\xf6\r\n"
        + "Zoë Ng,zoe@example.com,Zürich\r\n".encode()
    )
    fmt, rows = read(data)

    assert fmt.encoding == "utf-8"
    assert [row.error for row in rows][::2] == [None, None]
    assert rows[1].error.startswith("line 3 is not valid UTF-8: the byte 0xF6 at position 3 ")
    assert rows[1].values[0] == "Bj\ufffdrn Berg"
    assert rows[2].values == ["Zoë Ng", "zoe@example.com", "Zürich"]


def test_a_nul_character_is_a_row_error():
    _fmt, rows = read(b"Name,Email\nAnn,a@example.com\nB\x00b,b@example.com\n")
    assert rows[1].error == "line 3 contains a NUL character"


def test_a_file_ending_inside_a_quoted_field():
    data = b'Name,Email,Notes\nAnn,ann@example.com,"fine"\nBob,bob@example.com,"never\nclosed\n'
    _fmt, rows = read(data)

    assert rows[0].error is None
    assert rows[1].line == 3
    assert rows[1].error == "line 3: a quoted field is never closed"


def test_a_2_mb_field_is_a_row_error_and_the_next_row_is_read():
    data = (
        b"Name,Email,Notes\r\nAnn,ann@example.com,short\r\n"
        + b'Big,big@example.com,"'
        + b"x" * (2 * MB)
        + b'"\r\nCal,cal@example.com,after\r\n'
    )
    _fmt, rows = read(data)

    assert [row.values[0] for row in rows] == ["Ann", "Big", "Cal"]
    assert rows[1].error == 'line 3: the field in column 3 ("Notes") is larger than 1 MB'
    assert rows[0].error is None
    assert rows[2].error is None


def test_a_2_mb_first_row_does_not_hide_the_header():
    data = b'Name,Email,Notes\nBig,big@example.com,"' + b"x" * (2 * MB) + b'"\nAnn,a@example.com,\n'
    fmt, rows = read(data)

    assert fmt.header == ["Name", "Email", "Notes"]
    assert rows[0].error == 'line 2: the field in column 3 ("Notes") is larger than 1 MB'
    assert rows[1].values == ["Ann", "a@example.com", ""]


def test_a_row_of_10000_columns_is_a_row_error():
    wide = ",".join(f"v{n}" for n in range(MAX_COLUMNS))
    data = f"Name,Email,Phone\nAnn,ann@example.com,1\n{wide}\nBob,bob@example.com,2\n".encode()
    _fmt, rows = read(data)

    assert rows[1].error == "line 3 has 10,000 values, but the header has 3 columns"
    assert [row.error for row in (rows[0], rows[2])] == [None, None]


def test_a_header_of_10000_columns_is_read_past_the_first_64_kb():
    header = ["Name", "Email"] + [f"Custom field {n}" for n in range(MAX_COLUMNS - 2)]
    row = ["Ann", "ann@example.com"] + [""] * (MAX_COLUMNS - 2)
    data = (",".join(header) + "\n" + ",".join(row) + "\n").encode()
    assert len(data) > SNIFF_BYTES

    fmt, rows = read(data)
    assert len(fmt.header) == MAX_COLUMNS
    assert rows[0].values[:2] == ["Ann", "ann@example.com"]
    assert rows[0].error is None


def test_a_header_over_10000_columns_is_refused():
    header = ",".join(f"Column {n}" for n in range(MAX_COLUMNS + 1))
    with pytest.raises(TooManyColumns, match="10,001 columns"):
        sniff_file(io.BytesIO(f"{header}\n".encode()))


def test_a_row_a_little_wider_than_the_header():
    data = b"Name,Email\nAnn,ann@example.com,,\nBob,bob@example.com,oops\n"
    _fmt, rows = read(data)

    assert rows[0].error is None
    assert rows[1].error == (
        "line 3 has 3 values, but the header has 2 columns (does a value contain a comma "
        "without quotes around it?)"
    )


def test_a_quote_never_closed_stops_at_the_record_limit_and_reading_goes_on():
    lines = ["Name,Email", "Ann,ann@example.com", 'Bob,"bob@example.com']
    lines += [f"Person {n},p{n}@example.com" for n in range(200)]
    data = "\n".join(lines).encode() + b"\n"
    _fmt, rows = read(data, max_record_bytes=1024)

    assert rows[0].values == ["Ann", "ann@example.com"]
    assert rows[1].line == 3
    assert rows[1].error.startswith("line 3: the row is larger than 1 KB")
    assert "lines 3 to " in rows[1].error
    # After the skipped lines, rows are read again.
    assert rows[-1].values == ["Person 199", "p199@example.com"]
    assert all(row.error is None for row in rows[2:])


def test_a_single_endless_line_is_skipped_without_holding_it():
    data = b"Name,Email\n" + b"x" * 50_000 + b"\nAnn,ann@example.com\n"
    _fmt, rows = read(data, max_record_bytes=4096)

    assert rows[0].error == "line 2 is larger than 4 KB and was skipped"
    assert rows[1].values == ["Ann", "ann@example.com"]
    assert rows[1].line == 3


def test_resume_point_must_be_complete():
    fmt = sniff(b"Name,Email\nA,a@example.com\n")
    with pytest.raises(ValueError, match="go together"):
        list(iter_rows(io.BytesIO(b""), fmt, start_offset=11))


# ----------------------------------------------------------------------------- resuming

RESUME_FILES = [path.name for path in sorted(FILES.iterdir())]


def assert_resumes_everywhere(data: bytes) -> None:
    fmt = sniff_file(io.BytesIO(data))
    rows = list(iter_rows(io.BytesIO(data), fmt))
    offsets = [row.byte_offset_after for row in rows]
    assert offsets == sorted(offsets)
    for index, row in enumerate(rows):
        rest = list(
            iter_rows(
                io.BytesIO(data), fmt, start_offset=row.byte_offset_after, start_line=row.next_line
            )
        )
        assert rest == rows[index + 1 :]
        # A download that starts at the offset (a range request) gives the same rows.
        ranged = OneWayStream(data[row.byte_offset_after :])
        rest = list(
            iter_rows(
                ranged,
                fmt,
                start_offset=row.byte_offset_after,
                start_line=row.next_line,
                stream_offset=row.byte_offset_after,
            )
        )
        assert rest == rows[index + 1 :]


@pytest.mark.parametrize("name", RESUME_FILES)
def test_resuming_from_every_reported_offset_gives_exactly_the_remaining_rows(name):
    assert_resumes_everywhere((FILES / name).read_bytes())


def test_resuming_across_bad_rows():
    data = (
        b'Name,Email,Notes\r\nAnn,a@example.com,"multi\r\nline"\r\n\r\n'
        b"Bad\xff,b@example.com,x\r\n" + b"Wide," * 80 + b'\r\nLast,l@example.com,"open\r\n'
    )
    assert_resumes_everywhere(data)


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64])
@pytest.mark.parametrize("name", ["apple_contacts.csv", "excel_unicode_text.txt", "outlook.csv"])
def test_rows_do_not_depend_on_where_reads_end(monkeypatch, name, chunk):
    data = (FILES / name).read_bytes()
    expected = read(data)[1]
    monkeypatch.setattr(csv_reader, "_CHUNK", chunk)
    assert read(data)[1] == expected


def test_a_one_way_stream_is_read_from_its_start():
    data = (FILES / "linkedin_connections.csv").read_bytes()
    fmt = sniff_file(OneWayStream(data))
    rows = list(iter_rows(OneWayStream(data), fmt))
    assert rows == read(data)[1]


# ----------------------------------------------------------------------------- formula guard


@pytest.mark.parametrize(
    ("value", "guarded"),
    [
        ("=SUM(A1:A3)", "'=SUM(A1:A3)"),
        ("+44 20 7946 0958", "'+44 20 7946 0958"),
        ("-42", "'-42"),
        ("@handle", "'@handle"),
        ("\tindented", "'\tindented"),
        ("\rcarriage", "'\rcarriage"),
        ("'=already quoted", "''=already quoted"),
        ("plain", "plain"),
        ("it's", "it's"),
        ("'quoted'", "'quoted'"),
        ("", ""),
    ],
)
def test_formula_guard(value, guarded):
    assert guard_formula(value) == guarded
    assert strip_formula_guard(guarded) == value


def test_the_import_strips_exactly_one_apostrophe():
    assert strip_formula_guard("'=1+1") == "=1+1"
    assert strip_formula_guard("''=1+1") == "'=1+1"
    assert strip_formula_guard("'hello") == "'hello"


@given(st.text())
def test_formula_guard_round_trip(value):
    guarded = guard_formula(value)
    assert strip_formula_guard(guarded) == value
    assert not guarded or guarded[0] not in "=+-@\t\r"


# ----------------------------------------------------------------------------- fuzzing

HANG_BOUND = 5.0  # seconds for one fuzzed file of at most a few hundred bytes
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def csv_like_bytes():
    pieces = st.sampled_from(
        [
            b",",
            b";",
            b"\t",
            b"|",
            b'"',
            b"\r",
            b"\n",
            b"\r\n",
            b"Name",
            b"Email",
            b"a@b.co",
            b"1",
            b" ",
            # Bytes that make encodings interesting: UTF-8, Windows-1252, BOMs, a NUL, half a
            # UTF-16 surrogate, Excel's delimiter hint.
            b"\xc3\xa9",
            b"\xe9",
            b"\xff\xfe",
            b"\xef\xbb\xbf",
            b"\x00",
            b"\xd8\x3d",
            b"sep=;",
        ]
    )
    return st.one_of(
        st.binary(max_size=600),
        st.lists(pieces, max_size=120).map(b"".join),
    )


@FUZZ
@given(csv_like_bytes())
def test_any_bytes_give_a_format_or_one_of_our_errors_and_rows_never_raise(data):
    started = time.monotonic()
    try:
        fmt = sniff_file(io.BytesIO(data))
    except CsvError as error:
        message = error.message
        assert message
        return
    rows = list(iter_rows(io.BytesIO(data), fmt, max_record_bytes=256))
    # Never hangs: a few hundred bytes take milliseconds; the bound leaves room for a
    # busy machine, not for a loop that does not end.
    assert time.monotonic() - started < HANG_BOUND
    offsets = [row.byte_offset_after for row in rows]
    assert offsets == sorted(offsets)
    assert all(offset <= len(data) for offset in offsets)
    for row in rows:
        # The message names the line the problem is on: one of the record's own.
        named = range(row.line, max(row.next_line, row.line + 1))
        assert (
            row.error is None
            or any(row.error.startswith(f"line {n} ") for n in named)
            or (row.error.startswith(f"line {row.line}:"))
        )
    for index, row in enumerate(rows):
        rest = iter_rows(
            io.BytesIO(data),
            fmt,
            start_offset=row.byte_offset_after,
            start_line=row.next_line,
            max_record_bytes=256,
        )
        assert list(rest) == rows[index + 1 :]


ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-be-bom", "cp1252"]
# Letters that Windows-1252 writes as single bytes no UTF-8 reader would accept: a file of
# them can only be Windows-1252.
CP1252_TEXT = st.text(
    alphabet=st.characters(codec="ascii", exclude_categories=["Cc"])
    | st.sampled_from("éüöäßñçøåÉÜÖ"),
    max_size=12,
)
ANY_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12
)
HEADER = ["Name", "Email", "Phone", "Company", "Notes", "Title"]


def encode(text: str, encoding: str) -> bytes:
    if encoding == "utf-16-be-bom":
        return b"\xfe\xff" + text.encode("utf-16-be")
    return text.encode(encoding)


def write_csv(rows: list[list[str]], delimiter: str, encoding: str) -> bytes:
    out = io.StringIO()
    # csv.writer quotes a value holding a lone CR only if CR is in its line terminator.
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerows(rows)
    return encode(out.getvalue(), encoding)


@st.composite
def tables(draw, text=None):
    encoding = draw(st.sampled_from(ENCODINGS))
    values = text if text is not None else (CP1252_TEXT if encoding == "cp1252" else ANY_TEXT)
    width = draw(st.integers(min_value=1, max_value=len(HEADER)))
    rows = draw(st.lists(st.lists(values, min_size=width, max_size=width), max_size=8))
    return encoding, draw(st.sampled_from(csv_reader.DELIMITERS)), HEADER[:width], rows


def expected_rows(rows: list[list[str]]) -> list[list[str]]:
    return [row for row in rows if any(value.strip() for value in row)]


@FUZZ
@given(tables())
def test_rows_written_by_csv_writer_read_back_the_same(table):
    encoding, delimiter, header, rows = table
    data = write_csv([header, *rows], delimiter, encoding)
    head = write_csv([header], delimiter, encoding)
    fmt = FileFormat(
        encoding={"utf-8-sig": "utf-8", "utf-16": "utf-16-le", "utf-16-be-bom": "utf-16-be"}.get(
            encoding, encoding
        ),
        delimiter=delimiter,
        header_line_index=0,
        header=header,
        preview_rows=[],
        has_bom=encoding in ("utf-8-sig", "utf-16", "utf-16-be-bom"),
        line_ending="\r\n",
        data_offset=len(head),
        data_line=2,
    )
    read_back = list(iter_rows(io.BytesIO(data), fmt))
    assert [row.values for row in read_back] == expected_rows(rows)
    assert all(row.error is None for row in read_back)
    if rows and any(value.strip() for value in rows[-1]):
        assert read_back[-1].byte_offset_after == len(data)


SNIFFABLE_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"], exclude_characters=",;|\t")
    | st.sampled_from(' "\r\n'),
    max_size=12,
)


@FUZZ
@given(tables(text=SNIFFABLE_TEXT), st.data())
def test_sniff_finds_the_format_csv_writer_used(table, data):
    encoding, delimiter, header, rows = table
    if encoding == "cp1252":
        rows = [[value.encode("cp1252", "ignore").decode("cp1252") for value in r] for r in rows]
        rows = [
            ["".join(c for c in v if c.isascii() or c in "éüöäßñçøåÉÜÖ") for v in r] for r in rows
        ]
    file = write_csv([header, *rows], delimiter, encoding)

    fmt = sniff_file(io.BytesIO(file))
    assert fmt.header == header
    if len(header) > 1:
        assert fmt.delimiter == delimiter
    assert [row.values for row in iter_rows(io.BytesIO(file), fmt)] == expected_rows(rows)
