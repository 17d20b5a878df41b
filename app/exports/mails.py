"""The export-ready mail: built from templates (text + HTML), sent through the mail seam.

Jobs have no web app around them, so this builds its own Jinja environment over the
same templates folder (autoescaped HTML, plain text as is).
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.lib.mail import Mailer, build_message

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


def mail_templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        keep_trailing_newline=True,
    )


class ExportMails:
    def __init__(self, mailer: Mailer, sender: str, templates: Environment | None = None) -> None:
        self.mailer = mailer
        self.sender = sender
        self.templates = templates or mail_templates()

    async def ready(
        self, *, to: str, name: str, filename: str, rows: int, url: str, expires: str
    ) -> None:
        context = {
            "name": name,
            "filename": filename,
            "rows": rows,
            "url": url,
            "expires": expires,
        }
        text = self.templates.get_template("exports/mail/ready.txt").render(context)
        html = self.templates.get_template("exports/mail/ready.html").render(context)
        message = build_message(
            to=to,
            subject=f"Your export {filename} is ready",
            text=text,
            html=html,
            sender=self.sender,
        )
        await self.mailer.send(message)
