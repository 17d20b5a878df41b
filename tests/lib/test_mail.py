"""The mail seam: one built message, delivered over SMTP or written as a .eml file."""

import asyncio
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from pathlib import Path

import pytest

from app.lib.mail import FileMailer, SmtpMailer, build_mailer, build_message
from app.settings import Settings

SECRET = "x" * 40
TEXT = "Hello Ada,\n\nConfirm your address: http://testserver.local/verify/abc\n"
HTML = '<p>Hello Ada,</p><p><a href="http://testserver.local/verify/abc">Confirm</a></p>'


def welcome() -> EmailMessage:
    return build_message(
        to="Ada Lovelace <ada@example.com>",
        subject="Confirm your email — CRM",
        text=TEXT,
        html=HTML,
        sender="CRM <no-reply@crm.example.org>",
    )


def parts_by_type(message: Message) -> dict[str, str]:
    found = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            found[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8")
    return found


def assert_is_the_welcome_message(received: Message) -> None:
    """What a person looking at their inbox would check."""
    parsed = message_from_bytes(received.as_bytes(), policy=policy.default)
    assert parsed["Subject"] == "Confirm your email — CRM"
    assert parsed["To"].addresses[0].addr_spec == "ada@example.com"
    assert parsed["To"].addresses[0].display_name == "Ada Lovelace"
    assert parsed["From"].addresses[0].addr_spec == "no-reply@crm.example.org"
    assert parsed.get_content_type() == "multipart/alternative"
    parts = parts_by_type(parsed)
    assert parts["text/plain"].replace("\r\n", "\n") == TEXT
    assert parts["text/html"].strip() == HTML
    assert parsed["Date"] is not None
    assert parsed["Message-ID"].endswith("@crm.example.org>")


def test_build_message_has_both_parts_a_date_and_a_message_id():
    message = welcome()
    assert_is_the_welcome_message(message)
    plain = build_message(to="a@example.com", subject="Hi", text="Hi", html=None, sender="x@y.z")
    assert plain.get_content_type() == "text/plain"


def test_build_message_refuses_header_injection():
    with pytest.raises(ValueError, match="linefeed or carriage return"):
        build_message(
            to="a@example.com",
            subject="Hi\r\nBcc: everyone@example.com",
            text="x",
            html=None,
            sender="x@y.z",
        )


async def test_smtp_mailer_delivers_to_a_real_server(smtp_inbox):
    mailer = build_mailer(Settings(secret_key=SECRET, mail_url=smtp_inbox.url))
    assert isinstance(mailer, SmtpMailer)
    await mailer.check()
    await mailer.send(welcome())
    received = await asyncio.to_thread(smtp_inbox.wait_for, 1)
    assert len(received) == 1
    assert_is_the_welcome_message(received[0])


async def test_file_mailer_writes_one_parseable_eml(tmp_path):
    folder = tmp_path / "mail"
    mailer = build_mailer(Settings(secret_key=SECRET, mail_url=f"file://{folder}"))
    assert isinstance(mailer, FileMailer)
    await mailer.check()
    await mailer.send(welcome())
    files = sorted(folder.iterdir())
    assert [f.suffix for f in files] == [".eml"], files  # no temporary file left
    assert_is_the_welcome_message(message_from_bytes(files[0].read_bytes()))

    await mailer.send(welcome())
    assert len(list(folder.glob("*.eml"))) == 2  # unique names, nothing overwritten


@pytest.mark.parametrize(
    ("url", "kind", "expected"),
    [
        ("file://./var/mail", FileMailer, {"directory": Path("var/mail")}),
        ("file:///srv/crm/mail", FileMailer, {"directory": Path("/srv/crm/mail")}),
        ("smtp://127.0.0.1:1025", SmtpMailer, {"host": "127.0.0.1", "port": 1025}),
        ("smtp://mail.example.org", SmtpMailer, {"port": 25, "username": None}),
        (
            "smtp://crm%40example.org:p%3Ass@mail.example.org:587",
            SmtpMailer,
            {"port": 587, "username": "crm@example.org", "password": "p:ss", "use_ssl": False},
        ),
        ("smtps://mail.example.org", SmtpMailer, {"port": 465, "use_ssl": True}),
    ],
)
def test_build_mailer_picks_the_mailer_from_settings(url, kind, expected):
    mailer = build_mailer(Settings(secret_key=SECRET, mail_url=url))
    assert isinstance(mailer, kind)
    for name, value in expected.items():
        assert getattr(mailer, name) == value, name


def test_build_mailer_refuses_an_unknown_scheme():
    with pytest.raises(ValueError, match="MAIL_URL"):
        build_mailer(Settings(secret_key=SECRET, mail_url="sendmail://local"))
