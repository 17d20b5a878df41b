"""The mail seam: build a message once, hand it to whichever ``Mailer`` is configured.

``MAIL_URL`` picks the mailer at start-up (``build_mailer``):

- ``file://DIR`` (the embedded default): each message becomes a ``.eml`` file in DIR,
  for a developer to open. Everything after ``file://`` is the path, so
  ``file://./var/mail`` is relative and ``file:///var/mail`` absolute.
- ``smtp://[user:password@]host[:port]``: sent with the standard library's smtplib;
  ``smtps://`` connects over TLS from the start. With credentials, STARTTLS is used
  whenever the server offers it, so a password is not sent in the clear needlessly.

smtplib and file writes block, so both mailers work in a worker thread
(``asyncio.to_thread``) and the event loop keeps serving requests meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import smtplib
import ssl
import tempfile
import uuid
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from app.settings import Settings, SettingsError

SMTP_TIMEOUT = 10.0
"""Seconds before a silent SMTP server is given up on (connect and each command)."""


def build_message(
    *, to: str, subject: str, text: str, html: str | None, sender: str
) -> EmailMessage:
    """A ready-to-send message: plain text, plus an HTML alternative when given.

    Header values with line breaks are refused by the email package (ValueError), which
    is what keeps a user-supplied subject or address from injecting headers.
    """
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    # make_msgid would otherwise ask DNS for this host's name (slow, and often
    # 'localhost'); the sender's domain is the one the message claims to come from.
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


@runtime_checkable
class Mailer(Protocol):
    """Delivers a built message; implementations never alter it."""

    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` to the recipients in its headers, or raise."""

    async def check(self) -> None:
        """Raise if mail cannot be delivered right now (for /readyz)."""


class FileMailer:
    """Writes each message to ``directory`` as ``<UTC timestamp>-<uuid>.eml``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, message)

    def _write(self, message: EmailMessage) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex}.eml"
        # CRLF line ends, as on the wire: the file is exactly what SMTP would carry.
        data = message.as_bytes(policy=policy.SMTP)
        # Written under a dot-name then renamed, so a reader polling the folder never
        # sees half a message.
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".eml.part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return path

    async def check(self) -> None:
        def probe() -> None:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".probe-")
            os.close(fd)
            os.unlink(temp)

        await asyncio.to_thread(probe)


class SmtpMailer:
    """Sends through an SMTP server, one connection per message.

    One connection per message keeps it simple and robust (no idle connection to go
    stale); the app sends little mail: verification and reset links, job notices.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        use_ssl: bool = False,
        timeout: float = SMTP_TIMEOUT,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.use_ssl = use_ssl
        self.timeout = timeout

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        if self.use_ssl:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.username is not None:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=context)
                    smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send(self, message: EmailMessage) -> None:
        with self._connect() as smtp:
            if self.username is not None:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._send, message)

    async def check(self) -> None:
        def probe() -> None:
            with self._connect() as smtp:
                code, reply = smtp.noop()
                if code != 250:
                    raise smtplib.SMTPResponseException(code, reply)

        await asyncio.to_thread(probe)


def mailer_from_url(url: str) -> Mailer:
    """The mailer a ``MAIL_URL`` describes (see the module docstring)."""
    if url.startswith("file://"):
        path = url.removeprefix("file://")
        if not path:
            raise SettingsError("MAIL_URL file:// needs a folder, e.g. file://./var/mail")
        return FileMailer(path)
    parts = urlsplit(url)
    if parts.scheme in ("smtp", "smtps"):
        if not parts.hostname:
            raise SettingsError(f"MAIL_URL needs a host, got {url!r}")
        use_ssl = parts.scheme == "smtps"
        return SmtpMailer(
            parts.hostname,
            parts.port or (465 if use_ssl else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_ssl=use_ssl,
        )
    raise SettingsError(f"MAIL_URL must start with file://, smtp:// or smtps://, got {url!r}")


def build_mailer(settings: Settings) -> Mailer:
    """The mailer ``settings.mail_url`` asks for, chosen once at start-up."""
    return mailer_from_url(settings.mail_url)


__all__ = [
    "FileMailer",
    "Mailer",
    "SmtpMailer",
    "build_mailer",
    "build_message",
    "mailer_from_url",
]
