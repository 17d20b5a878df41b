"""The account mails: built once from templates (text + HTML), sent through the mail seam."""

from __future__ import annotations

from jinja2 import Environment

from app.lib.mail import Mailer, build_message


class AccountMails:
    def __init__(self, mailer: Mailer, templates: Environment, sender: str) -> None:
        self.mailer = mailer
        self.templates = templates
        self.sender = sender

    async def _send(self, to: str, subject: str, template: str, **context: object) -> None:
        text = self.templates.get_template(f"accounts/mail/{template}.txt").render(context)
        html = self.templates.get_template(f"accounts/mail/{template}.html").render(context)
        message = build_message(to=to, subject=subject, text=text, html=html, sender=self.sender)
        await self.mailer.send(message)

    async def verification(self, *, to: str, name: str, url: str) -> None:
        await self._send(to, "Confirm your email address", "verify", name=name, url=url)

    async def password_reset(self, *, to: str, name: str, url: str) -> None:
        await self._send(to, "Reset your password", "reset", name=name, url=url)
