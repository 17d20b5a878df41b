"""Browser pages of accounts: register, sign in and out, email verification, password reset
and the settings pages (profile, password, personal access tokens).

Controllers parse the form, call one AccountService method and render; the rules live in
the service. Every form posts back to its own URL, answers 303 and a flash message on
success, and re-renders itself with the errors beside the fields (status 422) otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

from jinja2 import pass_context
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, TooManyRequestsException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Response
from litestar.types import ControllerRouterHandler

from app.accounts.auth import (
    SESSION_USER,
    current_account,
    log_auth_event,
    login_guard,
    verified_guard,
)
from app.accounts.repository import Account
from app.accounts.service import AccountService
from app.lib.flash import flash
from app.lib.htmx import render
from app.lib.requests import client_ip
from app.lib.security import rotate_session
from app.lib.throttle import Throttle, Verdict
from app.lib.validation import ValidationFailed, normalize_email

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
Accounts = NamedDependency[AccountService]  # the app's "accounts" dependency
Throttled = NamedDependency[Throttle]  # the app's "throttle" dependency

# Never sent back to the browser, whatever happens.
SECRET_FIELDS = frozenset({"password", "password_confirmation", "current_password"})

# The mailed links: what follows these prefixes is a credential, kept out of the logs.
VERIFY_LINK = "/verify-email/"
RESET_LINK = "/reset-password/"
SECRET_LINK_PREFIXES = (VERIFY_LINK, RESET_LINK)

# Where a signed-in, verified person lands (the customer book, once it exists).
HOME = "home"

# Throttles: at most `limit` in each `window` of seconds, counted in the shared store.
LOGIN_ATTEMPTS = {"limit": 5, "window": 60}  # per (email, IP)
LOGIN_FAILURES = {"limit": 100, "window": 3600}  # per account
REGISTRATION_WINDOW = 3600  # REGISTRATION_LIMIT registrations per IP in this window
VERIFY_RESENDS = {"limit": 6, "window": 60}  # per account
RESET_REQUESTS = {"limit": 6, "window": 60}  # per IP: each one sends a mail

WRONG_CREDENTIALS = "That email and password do not match an account. Check both and try again."


# helpers ------------------------------------------------------------------------------


@pass_context
def signed_in_account(context: Mapping[str, Any]) -> Account | None:
    """The signed-in account for templates (None on pages outside the middleware)."""
    request = context.get("request")
    return current_account(request) if request is not None else None


def account_of(request: Request) -> Account:
    account = current_account(request)
    assert account is not None, "a guard lets only signed-in people here"
    return account


def kept_values(data: Mapping[str, str]) -> dict[str, str]:
    """What the person typed, to show again: never a password, never the CSRF token."""
    return {k: v for k, v in data.items() if k not in SECRET_FIELDS and not k.startswith("_")}


def form_page(
    request: Request,
    template: str,
    *,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
    **context: Any,
) -> Response[str]:
    return render(
        request,
        template,
        {"values": values or {}, "errors": errors or {}, **context},
        status_code=status_code,
    )


def invalid(
    request: Request,
    template: str,
    data: Mapping[str, str],
    error: ValidationFailed,
    **context: Any,
) -> Response[str]:
    return form_page(
        request,
        template,
        values=kept_values(data),
        errors=error.errors,
        status_code=422,
        **context,
    )


def done(request: Request, message: str, route: str, **params: Any) -> Redirect:
    flash(request, message)
    return Redirect(request.app.route_reverse(route, **params), status_code=303)


def in_words(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def refuse(verdict: Verdict, what: str) -> NoReturn:
    wait = max(verdict.retry_after, 1)
    raise TooManyRequestsException(
        detail=f"{what} Try again in {in_words(wait)}.",
        headers={"Retry-After": str(wait)},
    )


def local_path(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    # Browsers read a backslash as a slash ("/\\evil.example"), and control characters
    # could split headers.
    if "\\" in target or any(ord(char) < 32 for char in target):
        return None
    return target


def sign_in(request: Request, account: Account) -> None:
    """A fresh session id for a fresh session: nothing chosen before sign-in survives it."""
    rotate_session(request)
    request.session.clear()
    request.session[SESSION_USER] = account.id


def landing(request: Request, account: Account, target: str | None = None) -> str:
    if not account.is_verified:
        return request.app.route_reverse("verify_notice")
    return local_path(target) or request.app.route_reverse(HOME)


# registration, sign-in, sign-out ------------------------------------------------------


class SessionController(Controller):
    include_in_schema = False

    @get("/register", name="register")
    async def register_form(self, request: Request) -> Response[Any]:
        if (account := current_account(request)) is not None:
            return Redirect(landing(request, account), status_code=303)
        return form_page(request, "accounts/register.html")

    @post("/register")
    async def register(
        self, request: Request, data: FormData, accounts: Accounts, throttle: Throttled
    ) -> Response[Any]:
        verdict = await throttle.hit(
            f"register:{client_ip(request.scope)}",
            limit=request.app.state.settings.registration_limit,
            window=REGISTRATION_WINDOW,
        )
        if not verdict.allowed:
            refuse(verdict, "Too many accounts were created from your network in the last hour.")
        try:
            account = await accounts.register(
                name=data.get("name", ""),
                email=data.get("email", ""),
                password=data.get("password", ""),
                password_confirmation=data.get("password_confirmation", ""),
            )
        except ValidationFailed as error:
            return invalid(request, "accounts/register.html", data, error)
        log_auth_event(request, "register", user_id=account.id)
        sign_in(request, account)
        return done(
            request,
            f"Welcome, {account.name}! We sent a link to {account.email}: "
            "follow it to confirm your address.",
            "verify_notice",
        )

    @get("/login", name="login")
    async def login_form(
        self, request: Request, next: FromQuery[str | None] = None
    ) -> Response[Any]:
        if (account := current_account(request)) is not None:
            return Redirect(landing(request, account, next), status_code=303)
        return form_page(request, "accounts/login.html", values={"next": local_path(next) or ""})

    @post("/login")
    async def login(
        self, request: Request, data: FormData, accounts: Accounts, throttle: Throttled
    ) -> Response[Any]:
        email = normalize_email(data.get("email", ""))
        ip = client_ip(request.scope)
        # Every attempt counts against (email, IP); only failures against the account, so
        # someone guessing from many addresses cannot lock its owner out for long.
        attempts = await throttle.hit(f"login:{email}:{ip}", **LOGIN_ATTEMPTS)
        failures_key = f"login-failures:{email}"
        failures = await throttle.check(failures_key, **LOGIN_FAILURES)
        for verdict in (attempts, failures):
            if not verdict.allowed:
                log_auth_event(request, "login_throttled", email=email)
                refuse(verdict, "Too many sign-in attempts for this account.")
        account = await accounts.authenticate(email, data.get("password", ""))
        if account is None:
            await throttle.hit(failures_key, **LOGIN_FAILURES)
            log_auth_event(request, "login_failed", email=email)
            return form_page(
                request,
                "accounts/login.html",
                values=kept_values(data),
                errors={"form": WRONG_CREDENTIALS},
                status_code=422,
            )
        log_auth_event(request, "login", user_id=account.id)
        sign_in(request, account)
        if account.is_verified:
            flash(request, f"Welcome back, {account.name}.")
        else:
            flash(request, "You are signed in. Confirm your email address to continue.")
        return Redirect(landing(request, account, data.get("next")), status_code=303)

    @post("/logout", name="logout")
    async def logout(self, request: Request) -> Redirect:
        account = current_account(request)
        if account is not None:
            log_auth_event(request, "logout", user_id=account.id)
        # The old id is deleted from the store; the flash travels in a brand-new session.
        rotate_session(request)
        request.session.clear()
        return done(request, "You have signed out.", HOME)


# email verification -------------------------------------------------------------------


class VerificationController(Controller):
    include_in_schema = False

    @get("/verify-email", name="verify_notice", guards=[login_guard])
    async def notice(self, request: Request) -> Response[Any]:
        account = account_of(request)
        if account.is_verified:
            return Redirect(request.app.route_reverse(HOME), status_code=303)
        return render(request, "accounts/verify_notice.html", {"account": account})

    @post("/verify-email", name="verify_resend", guards=[login_guard])
    async def resend(self, request: Request, accounts: Accounts, throttle: Throttled) -> Redirect:
        account = account_of(request)
        if account.is_verified:
            return done(request, "Your email address is already confirmed.", HOME)
        verdict = await throttle.hit(f"verify-resend:{account.id}", **VERIFY_RESENDS)
        if not verdict.allowed:
            refuse(verdict, "We already sent several links in the last minute.")
        await accounts.send_verification(account)
        return done(request, f"We sent a new link to {account.email}.", "verify_notice")

    @get(VERIFY_LINK + "{token:str}", name="verify_email")
    async def verify(
        self, request: Request, token: FromPath[str], accounts: Accounts
    ) -> Response[Any]:
        account = await accounts.verify_email(token)
        signed_in = current_account(request)
        if account is None:
            if signed_in is not None and signed_in.is_verified:
                return done(request, "Your email address is already confirmed.", HOME)
            return render(
                request, "accounts/link_invalid.html", {"purpose": "verify"}, status_code=400
            )
        log_auth_event(request, "email_verified", user_id=account.id)
        if signed_in is not None and signed_in.id == account.id:
            return done(request, "Thank you: your email address is confirmed.", HOME)
        return done(request, "Thank you: your email address is confirmed. Sign in.", "login")


# password reset -----------------------------------------------------------------------


class PasswordResetController(Controller):
    include_in_schema = False

    @get("/forgot-password", name="forgot_password")
    async def forgot_form(self, request: Request) -> Response[str]:
        return form_page(request, "accounts/forgot_password.html")

    @post("/forgot-password")
    async def forgot(
        self, request: Request, data: FormData, accounts: Accounts, throttle: Throttled
    ) -> Response[Any]:
        verdict = await throttle.hit(
            f"password-reset:{client_ip(request.scope)}",
            **RESET_REQUESTS,
        )
        if not verdict.allowed:
            refuse(verdict, "Too many reset links were asked for from your network.")
        email = data.get("email", "")
        try:
            await accounts.request_password_reset(email)
        except ValidationFailed as error:
            return invalid(request, "accounts/forgot_password.html", data, error)
        # The same answer whether or not the account exists: no one learns who has one.
        return done(
            request,
            f"If an account uses {normalize_email(email)}, we sent it a link to choose a new "
            "password. The link works for 60 minutes.",
            "login",
        )

    @get(RESET_LINK + "{token:str}", name="reset_password")
    async def reset_form(
        self, request: Request, token: FromPath[str], accounts: Accounts
    ) -> Response[str]:
        if await accounts.account_for_reset(token) is None:
            return render(
                request, "accounts/link_invalid.html", {"purpose": "reset"}, status_code=400
            )
        return form_page(request, "accounts/reset_password.html", token=token)

    @post(RESET_LINK + "{token:str}")
    async def reset(
        self, request: Request, token: FromPath[str], data: FormData, accounts: Accounts
    ) -> Response[Any]:
        try:
            account = await accounts.reset_password(
                token, data.get("password", ""), data.get("password_confirmation", "")
            )
        except ValidationFailed as error:
            return invalid(request, "accounts/reset_password.html", data, error, token=token)
        if account is None:
            return render(
                request, "accounts/link_invalid.html", {"purpose": "reset"}, status_code=400
            )
        log_auth_event(request, "password_reset", user_id=account.id)
        return done(request, "Your password has been changed. Sign in with the new one.", "login")


# settings ------------------------------------------------------------------------------


class SettingsController(Controller):
    path = "/settings"
    include_in_schema = False
    # Unverified people may still fix their name, their address and their password.
    guards = [login_guard]

    @get("/", name="settings")
    async def index(self, request: Request) -> Redirect:
        return Redirect(request.app.route_reverse("profile"), status_code=303)

    @get("/profile", name="profile")
    async def profile_form(self, request: Request) -> Response[str]:
        account = account_of(request)
        values = {"name": account.name, "email": account.email}
        return form_page(request, "accounts/profile.html", values=values, section="profile")

    @post("/profile")
    async def profile(self, request: Request, data: FormData, accounts: Accounts) -> Response[Any]:
        account = account_of(request)
        try:
            updated = await accounts.update_profile(
                account, name=data.get("name", ""), email=data.get("email", "")
            )
        except ValidationFailed as error:
            return invalid(request, "accounts/profile.html", data, error, section="profile")
        if updated.email != account.email:
            log_auth_event(request, "email_changed", user_id=account.id)
            return done(
                request,
                f"Saved. We sent a link to {updated.email}: follow it to confirm your new address.",
                "verify_notice",
            )
        return done(request, "Your profile has been saved.", "profile")

    @get("/password", name="password")
    async def password_form(self, request: Request) -> Response[str]:
        return form_page(request, "accounts/password.html", section="password")

    @post("/password")
    async def password(self, request: Request, data: FormData, accounts: Accounts) -> Response[Any]:
        account = account_of(request)
        try:
            await accounts.change_password(
                account,
                current=data.get("current_password", ""),
                password=data.get("password", ""),
                confirmation=data.get("password_confirmation", ""),
            )
        except ValidationFailed as error:
            return invalid(request, "accounts/password.html", data, error, section="password")
        log_auth_event(request, "password_changed", user_id=account.id)
        rotate_session(request)
        return done(request, "Your password has been changed.", "password")

    @get("/tokens", name="tokens", guards=[verified_guard])
    async def tokens(self, request: Request, accounts: Accounts) -> Response[str]:
        return await self._tokens_page(request, accounts)

    @post("/tokens", guards=[verified_guard])
    async def create_token(
        self, request: Request, data: FormData, accounts: Accounts
    ) -> Response[str]:
        account = account_of(request)
        days_text = data.get("expires_in_days", "").strip()
        try:
            # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
            if days_text and not (days_text.isascii() and days_text.isdigit()):
                raise ValidationFailed(
                    {"expires_in_days": "Enter a whole number of days, or leave it empty."}
                )
            issued = await accounts.create_token(
                account,
                name=data.get("name", ""),
                expires_in_days=int(days_text) if days_text else None,
            )
        except ValidationFailed as error:
            return await self._tokens_page(
                request, accounts, values=kept_values(data), errors=error.errors, status_code=422
            )
        log_auth_event(request, "token_created", user_id=account.id, token_id=issued.record.id)
        # Shown in this response only, never kept anywhere (not even in the session store
        # for a redirect): reloading the page cannot bring it back.
        flash(request, f"Token “{issued.record.name}” created. Copy it now: it is shown only once.")
        return await self._tokens_page(
            request,
            accounts,
            new_token=issued.token,
            status_code=201,
            headers={"Cache-Control": "no-store"},
        )

    @post("/tokens/{token_id:int}/revoke", name="token_revoke", guards=[verified_guard])
    async def revoke_token(
        self, request: Request, token_id: FromPath[int], accounts: Accounts
    ) -> Redirect:
        account = account_of(request)
        if not await accounts.revoke_token(account, token_id):
            raise NotFoundException()
        log_auth_event(request, "token_revoked", user_id=account.id, token_id=token_id)
        return done(
            request, "The token has been revoked: programs using it are refused now.", "tokens"
        )

    async def _tokens_page(
        self,
        request: Request,
        accounts: Accounts,
        *,
        values: Mapping[str, str] | None = None,
        errors: Mapping[str, str] | None = None,
        new_token: str | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Response[str]:
        tokens = await accounts.list_tokens(account_of(request))
        return render(
            request,
            "accounts/tokens.html",
            {
                "values": values or {},
                "errors": errors or {},
                "tokens": tokens,
                "now": datetime.now(UTC),
                "new_token": new_token,
                "section": "tokens",
            },
            status_code=status_code,
            headers=headers,
        )


account_route_handlers: list[ControllerRouterHandler] = [
    SessionController,
    VerificationController,
    PasswordResetController,
    SettingsController,
]
