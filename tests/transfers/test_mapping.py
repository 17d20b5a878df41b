"""Mapping columns to customer fields, and whole files read as customers."""

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.transfers.csv_reader import guard_formula, iter_rows, sniff_file
from app.transfers.errors import MappingError
from app.transfers.mapping import (
    ALIASES,
    MappedRow,
    Mapping,
    Target,
    apply_mapping,
    normalize_header,
    suggest_mapping,
    validate_mapping,
)

FILES = Path(__file__).parent / "files"
EXPORT_HEADER = "name,email,phone,organization,job_title,notes,created_at,updated_at,slug"


def chosen(mapping: Mapping) -> dict[str, str]:
    """The columns that feed something, as the mapping page would show them."""
    return {
        column: str(target)
        for column, target in zip(mapping.header, mapping.targets, strict=True)
        if target is not Target.ignore
    }


def import_file(name: str) -> list[tuple[int, MappedRow]]:
    with (FILES / name).open("rb") as upload:
        fmt = sniff_file(upload)
        mapping = suggest_mapping(fmt.header)
        assert validate_mapping(mapping) == []
        result = []
        for row in iter_rows(upload, fmt):
            assert row.error is None
            result.append((row.line, apply_mapping(mapping, row.values, line=row.line)))
        return result


# ----------------------------------------------------------------------------- aliases


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("E-mail 1 - Value", "email1value"),
        ("  EMAIL_ADDRESS ", "emailaddress"),
        ("Email Address", "emailaddress"),
        ("job.title", "jobtitle"),
        ("Prénom", "prenom"),
        ("Phone (mobile)", "phonemobile"),
    ],
)
def test_headers_compare_without_case_spacing_or_accents(header, key):
    assert normalize_header(header) == key


def test_no_alias_points_two_ways():
    seen: dict[str, Target] = {}
    for target, aliases in ALIASES.items():
        for alias in aliases:
            key = normalize_header(alias)
            assert key, alias
            assert seen.setdefault(key, target) is target, alias


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "google_contacts_old.csv",
            {
                "Name": "name",
                "Given Name": "first_name",
                "Additional Name": "first_name",
                "Family Name": "last_name",
                "Notes": "notes",
                "E-mail 1 - Value": "email",
                "Phone 1 - Value": "phone",
                "Organization 1 - Name": "organization",
                "Organization 1 - Title": "job_title",
            },
        ),
        (
            "google_contacts_new.csv",
            {
                "First Name": "first_name",
                "Middle Name": "first_name",
                "Last Name": "last_name",
                "Organization Name": "organization",
                "Organization Title": "job_title",
                "Notes": "notes",
                "E-mail 1 - Value": "email",
                "Phone 1 - Value": "phone",
            },
        ),
        (
            "outlook.csv",
            {
                "First Name": "first_name",
                "Middle Name": "first_name",
                "Last Name": "last_name",
                "Company": "organization",
                "Job Title": "job_title",
                "Mobile Phone": "phone",
                "E-mail Address": "email",
                "Notes": "notes",
            },
        ),
        (
            "linkedin_connections.csv",
            {
                "First Name": "first_name",
                "Last Name": "last_name",
                "URL": "notes",
                "Email Address": "email",
                "Company": "organization",
                "Position": "job_title",
            },
        ),
        (
            "hubspot_contacts.csv",
            {
                "First Name": "first_name",
                "Last Name": "last_name",
                "Email": "email",
                "Phone Number": "phone",
                "Company Name": "organization",
                "Job Title": "job_title",
            },
        ),
        (
            "salesforce_contacts.csv",
            {
                "First Name": "first_name",
                "Last Name": "last_name",
                "Title": "job_title",
                "Account Name": "organization",
                "Email": "email",
                "Phone": "phone",
                "Description": "notes",
            },
        ),
        (
            "apple_contacts.csv",
            {
                "First name": "first_name",
                "Last name": "last_name",
                "Organization": "organization",
                "Job Title": "job_title",
                "Email (work)": "email",
                "Phone (mobile)": "phone",
                "Note": "notes",
            },
        ),
        (
            "excel_european.csv",
            {
                "Vorname": "first_name",
                "Nachname": "last_name",
                "Firma": "organization",
                "Position": "job_title",
                "E-Mail": "email",
                "Telefon": "phone",
                "Notizen": "notes",
            },
        ),
        (
            "excel_unicode_text.txt",
            {
                "Full name": "name",
                "Email address": "email",
                "Company": "organization",
                "Role": "job_title",
                "Phone": "phone",
                "Comments": "notes",
            },
        ),
        (
            "plain_english.csv",
            {
                "Full Name": "name",
                "EMAIL_ADDRESS": "email",
                "company": "organization",
                "Position": "job_title",
                "Mobile": "phone",
                "Comments": "notes",
            },
        ),
        (
            "crm_export.csv",
            {
                "name": "name",
                "email": "email",
                "phone": "phone",
                "organization": "organization",
                "job_title": "job_title",
                "notes": "notes",
            },
        ),
    ],
)
def test_each_export_format_is_mapped(name, expected):
    fmt = sniff_file(io.BytesIO((FILES / name).read_bytes()))
    assert chosen(suggest_mapping(fmt.header)) == expected


@pytest.mark.parametrize(
    ("header", "title"),
    [
        # Outlook: the name prefix; its job title has a column of its own.
        (
            "Title,First Name,Middle Name,Last Name,Suffix,Company,Job Title,E-mail Address",
            "ignore",
        ),
        ("Title,First Name,Middle Name,Last Name,E-mail Address", "ignore"),
        ("Title,First Name,Last Name,Suffix,E-mail Address", "ignore"),
        # Salesforce: Salutation is the prefix, Title the job title.
        ("Salutation,First Name,Middle Name,Last Name,Suffix,Title,Email", "job_title"),
        ("First Name,Last Name,Title,Account Name,Email", "job_title"),
        ("Name,Title,Email", "job_title"),
    ],
)
def test_title_is_read_as_the_rest_of_the_header_implies(header, title):
    mapping = suggest_mapping(header.split(","))
    assert mapping.targets[mapping.header.index("Title")] == title


def test_the_best_column_wins_and_the_others_are_ignored():
    mapping = suggest_mapping(
        [
            "E-mail 2 - Value",
            "E-mail 1 - Value",
            "Associated Company",
            "Company Name",
            "Email (home)",
        ]
    )
    assert chosen(mapping) == {"E-mail 1 - Value": "email", "Company Name": "organization"}


def test_name_beside_a_first_name_is_the_family_name():
    assert chosen(suggest_mapping(["Vorname", "Name", "E-Mail"])) == {
        "Vorname": "first_name",
        "Name": "last_name",
        "E-Mail": "email",
    }


def test_a_middle_name_alone_is_not_a_first_name():
    assert chosen(suggest_mapping(["Name", "Middle Name", "Email"])) == {
        "Name": "name",
        "Email": "email",
    }


def test_unknown_columns_are_ignored():
    mapping = suggest_mapping(["Favourite colour", "", "Shoe size"])
    assert mapping.targets == (Target.ignore,) * 3


# ----------------------------------------------------------------------------- validation


def test_a_mapping_without_name_and_email_says_what_is_missing():
    problems = validate_mapping(suggest_mapping(["Company", "Phone"]))
    assert problems == [
        "Map a column to Name (or to First name and Last name): every customer needs a name.",
        "Map a column to Email: every customer needs an email address.",
    ]


def test_first_or_last_name_is_enough_for_a_name():
    assert validate_mapping(suggest_mapping(["Last Name", "Email"])) == []


def test_two_columns_for_one_field_are_refused():
    mapping = Mapping.from_targets(["Work", "Home", "Name"], ["email", "email", "name"])
    assert validate_mapping(mapping) == [
        'Only one column can be mapped to Email, but "Work" and "Home" are. '
        "Set the others to Ignore (or Notes)."
    ]


def test_mappings_from_the_page_and_the_api():
    header = ["Full name", "Mail", "Memo", "Memo"]
    mapping = Mapping.from_names(header, {"Full name": "name", "Mail": "email", "Memo": "notes"})
    assert mapping.targets == (Target.name, Target.email, Target.notes, Target.ignore)
    assert Mapping.from_dict(mapping.to_dict()) == mapping

    with pytest.raises(MappingError) as raised:
        Mapping.from_names(header, {"Phone": "phone", "Mail": "e-mail"})
    assert raised.value.problems == [
        'The file has no column "Phone".',
        'Column "Mail": "e-mail" is not a field; choose one of name, first_name, last_name, '
        "email, phone, organization, job_title, notes, ignore.",
    ]
    with pytest.raises(MappingError, match="Choose a target for each of the 4 columns"):
        Mapping.from_targets(header, ["name"])


# ----------------------------------------------------------------------------- rows

SIMPLE = Mapping.from_targets(
    ["First", "Last", "Email", "Phone", "Company", "Role", "Notes"],
    ["first_name", "last_name", "email", "phone", "organization", "job_title", "notes"],
)


def test_values_are_trimmed_names_joined_and_the_email_normalized():
    row = apply_mapping(
        SIMPLE,
        [
            "  Ana ",
            " de  la\nCruz ",
            " Ana.Cruz@Example.COM ",
            " +34 600\t555 ",
            " Acme ",
            "CEO",
            " a\r\nb ",
        ],
    )
    assert row == MappedRow(
        name="Ana de la Cruz",
        email="Ana.Cruz@Example.COM",
        email_normalized="ana.cruz@example.com",
        phone="+34 600 555",
        organization="Acme",
        job_title="CEO",
        notes="a\nb",
        error=None,
    )
    assert row.customer_input().name == "Ana de la Cruz"


def test_short_rows_read_as_empty_cells():
    row = apply_mapping(SIMPLE, ["Ana", "Cruz", "ana@example.com"])
    assert (row.phone, row.notes, row.error) == ("", "", None)


def test_the_name_column_wins_and_first_plus_last_fill_in():
    mapping = suggest_mapping(["Name", "Given Name", "Family Name", "E-mail 1 - Value"])
    assert apply_mapping(mapping, ["Amy Li", "Amelia", "Li", "a@x.io"]).name == "Amy Li"
    assert apply_mapping(mapping, ["", "Amelia", "Li", "a@x.io"]).name == "Amelia Li"


@pytest.mark.parametrize(
    ("values", "error"),
    [
        (["", "", "bob@example.com"], "line 7: name is missing"),
        (["Bob", "", ""], "line 7: email is missing"),
        (["", "", ""], "line 7: name is missing; email is missing"),
        (["Bob", "", "bob@"], 'line 7: email "bob@" is not a valid address'),
        (
            ["Bob", "", "bob smith@example.com"],
            'line 7: email "bob smith@example.com" is not a valid address',
        ),
        (["B" * 201, "", "b@example.com"], "line 7: name is longer than 200 characters"),
        (["Bob", "", "b" * 250 + "@example.com"], "line 7: email is longer than 254 characters"),
        (["Bob", "", "b@example.com", "1" * 51], "line 7: phone is longer than 50 characters"),
        (
            ["Bob", "", "b@example.com", "", "O" * 201],
            "line 7: organization is longer than 200 characters",
        ),
        (
            ["Bob", "", "b@example.com", "", "", "J" * 201],
            "line 7: job title is longer than 200 characters",
        ),
        (
            ["Bob", "", "b@example.com", "", "", "", "n" * 10_001],
            "line 7: notes are longer than 10,000 characters",
        ),
    ],
)
def test_problems_are_named_in_words(values, error):
    assert apply_mapping(SIMPLE, values, line=7).error == error


def test_a_long_bad_email_is_shortened_in_the_message():
    error = apply_mapping(SIMPLE, ["Bob", "", "x" * 100]).error
    assert error == f'email "{"x" * 59}…" is not a valid address'


def test_several_note_columns_are_labelled_lines():
    mapping = Mapping.from_targets(
        ["Name", "Email", "Notes", "Comments", "URL"], ["name", "email", "notes", "notes", "notes"]
    )
    row = apply_mapping(mapping, ["Ann", "a@x.io", "Likes tea.", "", "https://example.com/ann"])
    assert row.notes == "Notes: Likes tea.\nURL: https://example.com/ann"


def test_a_file_whose_rows_are_all_invalid_reports_every_row():
    data = b"Name,Email\r\nAnn,\r\nBob,bob@\r\n,carl@example.com\r\n"
    fmt = sniff_file(io.BytesIO(data))
    mapping = suggest_mapping(fmt.header)
    errors = [
        apply_mapping(mapping, row.values, line=row.line).error
        for row in iter_rows(io.BytesIO(data), fmt)
    ]
    assert errors == [
        "line 2: email is missing",
        'line 3: email "bob@" is not a valid address',
        "line 4: name is missing",
    ]


# ----------------------------------------------------------------------------- whole files


def fields(row: MappedRow) -> tuple[str, ...]:
    return (row.name, row.email, row.phone, row.organization, row.job_title, row.notes)


def test_google_contacts_old_format():
    rows = import_file("google_contacts_old.csv")
    assert [(line, fields(row), row.error) for line, row in rows] == [
        (
            2,
            (
                "Amelia Hartwell",
                "amelia.hartwell@brightfield.example",
                "+44 7700 900123",
                "Brightfield Analytics",
                "Head of Procurement",
                "Met at the Lisbon trade fair.\nPrefers email over calls.",
            ),
            None,
        ),
        (
            6,  # the address above spans three lines
            (
                "João Pedro Ferreira",
                "joao.ferreira@correio.example",
                "+351 21 555 0199",
                "Keller, Voss & Partner",
                "Consultor Sénior",
                "",
            ),
            None,
        ),
        (
            7,
            (
                "Priya Raman",
                "Priya.Raman@Northwind-Traders.example",
                "",
                "Northwind Traders",
                "",
                'Renewal due in "Q3"; ask about the Chennai office.',
            ),
            None,
        ),
    ]
    assert rows[2][1].email_normalized == "priya.raman@northwind-traders.example"


def test_google_contacts_new_format():
    rows = [fields(row) for _line, row in import_file("google_contacts_new.csv")]
    assert rows == [
        (
            "Henrike Sophie Albrecht",
            "h.albrecht@klinikum-am-see.example",
            "+49 30 901820",
            "Klinikum Am See",
            "Chefärztin",
            "Prefers appointments before 9 am.",
        ),
        (
            "Kwame Mensah",
            "kwame.mensah@inbox.example",
            "+233 20 555 0147",
            "Accra Fintech Hub",
            "CTO",
            "",
        ),
        (
            "Ingrid Solberg",
            "ingrid.solberg@fjordline.example",
            "",
            "Fjordline Shipping AS",
            "",
            "Notes from the call:\n- wants a quote for 40 seats\n- budget approved in March",
        ),
    ]


def test_outlook():
    rows = [(fields(row), row.error) for _line, row in import_file("outlook.csv")]
    assert rows == [
        (
            (
                "Jonathan Pryce",  # "Mr." and "Jr." are left out
                "jonathan.pryce@prycedaughters.example",
                "+44 7700 900456",
                "Pryce & Daughters Ltd",
                "Managing Director",
                "",
            ),
            None,
        ),
        (
            (
                "Mei Ling Zhou",
                "mei.zhou@lumen-bio.example",
                "",  # only a business phone: the mobile column is the one mapped
                "Lumen Biosciences",
                "Principal Scientist",
                "Allergic to peanuts — order the vegan menu.\nAssistant: Karen Oduya",
            ),
            None,
        ),
        (
            (
                "Chloé Dubois-Lefèvre",
                "Chloe.Dubois@Atelier-Lefevre.example",
                "+33 6 12 34 56 78",
                "Atelier Lefèvre SARL",
                "Directrice artistique",
                "",
            ),
            None,
        ),
    ]


def test_linkedin_connections():
    rows = [(line, fields(row), row.error) for line, row in import_file("linkedin_connections.csv")]
    assert rows == [
        (
            5,
            (
                "Sven Lindqvist",
                "sven.lindqvist@nordkraft.example",
                "",
                "Nordkraft Energi AB",
                "VP Sales, Nordics",
                "https://www.linkedin.com/in/sven-lindqvist-4a1b2c",
            ),
            None,
        ),
        (
            6,
            (
                "Aisha Bello",
                "",
                "",
                "Lagos Logistics Ltd",
                "Operations Manager",
                "https://www.linkedin.com/in/aishabello",
            ),
            "line 6: email is missing",
        ),
        (
            7,
            (
                "Rafael Ortega Ruiz",
                "rortega@ortegaruiz.example",
                "",
                "",
                "Freelance Translator (ES/EN)",
                "https://www.linkedin.com/in/rafael-ortega-ruiz",
            ),
            None,
        ),
        (
            8,
            (
                "Emily O'Connor",
                "",
                "",
                "Greenleaf Partners",
                "Associate",
                "https://www.linkedin.com/in/emily-oconnor-99",
            ),
            "line 8: email is missing",
        ),
    ]


def test_hubspot():
    rows = [(fields(row), row.error) for _line, row in import_file("hubspot_contacts.csv")]
    assert rows == [
        (
            (
                "Grace Whitfield",
                "grace@whitfieldfoods.example",
                "+1 (617) 555-0143",
                "Whitfield Foods",
                "Owner",
                "",
            ),
            None,
        ),
        (
            ("Bob Marsh", "bob@", "555-0100", "Marsh & Co", "", ""),
            'line 3: email "bob@" is not a valid address',
        ),
        (
            (
                "Yuki Tanaka",
                "yuki.tanaka@sakura-design.example",
                "",
                "Sakura Design Studio",
                "Art Director",
                "",
            ),
            None,
        ),
        (("", "info@anonymous-lead.example", "", "", "", ""), "line 5: name is missing"),
    ]


def test_salesforce():
    rows = [(line, fields(row)) for line, row in import_file("salesforce_contacts.csv")]
    assert rows == [
        (
            2,
            (
                "Daniel Okafor",
                "d.okafor@harbourline.example",
                "+44 20 7946 0011",
                "Harbourline Freight",
                "Chief Financial Officer",
                "Signed the 2024 framework.\nCall before invoicing: prefers quarterly billing.",
            ),
        ),
        (
            4,
            (
                "Lucía Fernández",
                "lucia.fernandez@gruposolera.example",
                "",
                "Grupo Solera, S.L.",
                "Head of IT",
                "",
            ),
        ),
        (
            5,
            (
                "Pat Nguyen",
                "pat.nguyen@bluewave.example",
                "(03) 5550 1234",
                "Bluewave Retail",
                "Procurement Lead",
                'Met at "RetailTech" expo, booth 42',
            ),
        ),
    ]


def test_apple_style_export_with_cr_line_ends():
    rows = [(line, fields(row), row.error) for line, row in import_file("apple_contacts.csv")]
    assert rows == [
        (
            2,
            (
                "Zoë van der Berg",
                "zoe@studionoord.example",
                "+31 6 5555 0123",
                "Studio Noord",
                "Architect",
                "Birthday card every May.\nLikes Earl Grey.",
            ),
            None,
        ),
        (
            4,
            ("Lars Eriksen", "lars@eriksenbygg.example", "", "Eriksen Bygg AS", "Daglig leder", ""),
            None,
        ),
        (
            5,
            ("Ana Kovač", "", "+385 91 555 0199", "", "", "Private contact"),
            "line 5: email is missing",  # only a home address: the work column is the one mapped
        ),
    ]


def test_european_excel_in_windows_1252():
    rows = [(line, fields(row)) for line, row in import_file("excel_european.csv")]
    assert rows == [
        (
            3,
            (
                "Jürgen Weiß",
                "juergen@baeckerei-weiss.example",
                "+49 89 1234567",
                "Bäckerei Weiß GmbH",
                "Inhaber",
                "Liefert dienstags; Rechnung per Post",
            ),
        ),
        (
            4,
            (
                "Émilie Müller",
                "e.mueller@cafe-zuerich.example",
                "+41 44 555 01 23",
                "Café Zürich AG",
                "Geschäftsführerin",
                "",
            ),
        ),
        (
            5,
            (
                "Søren Ødegaard",
                "soeren@oedegaard.example",
                "",
                "",
                "Einkäufer",
                "Kontakt über Messe „Süßwaren 2023“",
            ),
        ),
    ]


def test_excel_unicode_text_in_utf16():
    rows = [fields(row) for _line, row in import_file("excel_unicode_text.txt")]
    assert rows == [
        (
            "山田 太郎",
            "taro.yamada@sakura-trading.example",
            "+81 3 5555 0101",
            "Sakura Trading 株式会社",
            "営業部長",
            "Met in Osaka 🎌",
        ),
        (
            "Νίκος Παπαδόπουλος",
            "nikos@aegean-olive.example",
            "+30 210 555 0123",
            "Aegean Olive Co.",
            "Export manager",
            'Quote: "extra virgin", 2 pallets',
        ),
        (
            "Fatima Zahra El Idrissi",
            "fz.elidrissi@atlas-textiles.example",
            "",
            "Atlas Textiles",
            "Buyer",
            "Line one\nLine two 👍",
        ),
    ]


def test_plain_english_headers_after_a_preamble():
    rows = [(line, fields(row), row.error) for line, row in import_file("plain_english.csv")]
    assert rows == [
        (
            5,
            (
                "Marta Nowak",
                "marta.nowak@wisla-tech.example",
                "+48 22 555 01 23",
                "Wisła Tech sp. z o.o.",
                "CTO",
                "Interested in the API.",
            ),
            None,
        ),
        (
            6,
            (
                "Olivier Martin",
                "OLIVIER.MARTIN@BOULANGERIE-MARTIN.EXAMPLE",
                "+33 1 55 55 01 02",
                "Boulangerie Martin",
                "Gérant",
                "",
            ),
            None,
        ),
        (
            7,
            (
                "Hannah Schmidt",
                "hannah.schmidt@",
                "",
                "Schmidt Consulting",
                "Owner",
                "Typo in the email?",
            ),
            'line 7: email "hannah.schmidt@" is not a valid address',
        ),
    ]


def test_our_own_export_gives_back_the_original_values():
    rows = [fields(row) for _line, row in import_file("crm_export.csv")]
    assert rows == [
        (
            "Ada Lovelace",
            "ada@analytical-engines.example",
            "+44 20 7946 0958",
            "Analytical Engines Ltd",
            "Mathematician",
            "=1+1 is what she typed\nsecond line",
        ),
        ("@handle Studio", "studio@handle.example", "", "-minus corp", "+plus role", ""),
        (
            'Quote "Q" Person',
            "q@quotes.example",
            "",
            "Commas, Inc.",
            "",
            "-3 dB on the second call",
        ),
    ]


# A customer's values as the service keeps them: trimmed, one line except notes.
LINE_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc", "Zl", "Zp"]) | st.sampled_from("=+-@'"),
    max_size=30,
).map(lambda value: " ".join(value.split()))
NOTES_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"]) | st.sampled_from("=+-@'\t\n"),
    max_size=60,
).map(str.strip)


@settings(max_examples=200, deadline=None)
@given(
    name=LINE_TEXT.filter(bool),
    phone=LINE_TEXT,
    organization=LINE_TEXT,
    job_title=LINE_TEXT,
    notes=NOTES_TEXT,
    bom=st.booleans(),
)
def test_export_then_import_round_trip(name, phone, organization, job_title, notes, bom):
    customer = [name, "someone@example.com", phone, organization, job_title, notes]
    out = io.StringIO()
    writer = csv.writer(out)  # lineterminator "\r\n": a value with a CR gets quoted
    writer.writerow(EXPORT_HEADER.split(","))
    cells = [*customer, "2024-01-02T10:00:00+00:00", "2024-01-02T10:00:00+00:00", "a-slug"]
    writer.writerow([guard_formula(value) for value in cells])
    data = ("\ufeff" if bom else "").encode() + out.getvalue().encode()

    fmt = sniff_file(io.BytesIO(data))
    mapping = suggest_mapping(fmt.header)
    (row,) = list(iter_rows(io.BytesIO(data), fmt))
    imported = apply_mapping(mapping, row.values)

    assert fields(imported) == tuple(customer)
    assert imported.error is None
