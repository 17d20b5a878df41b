"""How controllers get an AccountService and the throttle: built from the app's state."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request
from litestar.connection import ASGIConnection

from app.accounts.mails import AccountMails
from app.accounts.repository import PiccoloAccountRepository
from app.accounts.service import AccountService
from app.lib.throttle import Throttle
from app.settings import Settings


@cache
def mail_templates(directory: str) -> Environment:
    # Plain-text mails must not be HTML-escaped; HTML mails must be.
    return Environment(
        loader=FileSystemLoader(directory),
        autoescape=select_autoescape(["html"]),
        keep_trailing_newline=True,
    )


def build_account_service(connection: ASGIConnection) -> AccountService:
    """For code outside dependency injection, such as guards."""
    app = connection.app
    state = app.state
    settings: Settings = state.settings

    def link(route_name: str, **params: object) -> str:
        return settings.app_url + app.route_reverse(route_name, **params)

    mails = AccountMails(state.mailer, mail_templates(str(state.templates_dir)), settings.mail_from)
    return AccountService(PiccoloAccountRepository(), mails, settings.secret_key, link)


def provide_account_service(request: Request) -> AccountService:
    return build_account_service(request)


def provide_throttle(request: Request) -> Throttle:
    throttle: Throttle = request.app.state.throttle
    return throttle
