"""Account rules: registration, sign-in, verification, password reset, profile, tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.accounts import links
from app.accounts.mails import AccountMails
from app.accounts.passwords import (
    burn_verification_time,
    hash_password,
    password_problem,
    verify_password,
)
from app.accounts.repository import Account, AccountRepository, EmailTaken, TokenRecord
from app.lib.validation import ValidationFailed, email_problem, normalize_email, text_problem

VERIFY_TTL = 24 * 3600
RESET_TTL = 60 * 60
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)
TOKEN_NAME_MAX = 100
MAX_TOKEN_DAYS = 3650
EMAIL_TAKEN = "An account with this email already exists. Sign in, or reset your password."

# Builds an absolute URL of a named route: ("verify_email", token=...) -> "https://..."
LinkBuilder = Callable[..., str]


@dataclass(frozen=True)
class IssuedToken:
    record: TokenRecord
    token: str  # shown once, never stored


def now() -> datetime:
    return datetime.now(UTC)


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _verify_fingerprint(account: Account) -> str:
    verified = account.email_verified_at.isoformat() if account.email_verified_at else "-"
    return f"{account.email}|{verified}"


def _reset_fingerprint(account: Account) -> str:
    return account.password_hash


class AccountService:
    def __init__(
        self,
        repository: AccountRepository,
        mails: AccountMails,
        secret_key: str,
        link: LinkBuilder,
    ) -> None:
        self.repository = repository
        self.mails = mails
        self.secret_key = secret_key
        self.link = link

    # registration and sign-in ----------------------------------------------------------

    async def register(
        self, *, name: str, email: str, password: str, password_confirmation: str | None = None
    ) -> Account:
        name = name.strip()
        email = normalize_email(email)
        errors: dict[str, str] = {}
        if problem := text_problem(name, "your name", max_length=200, required=True):
            errors["name"] = problem
        if problem := email_problem(email):
            errors["email"] = problem
        if problem := password_problem(password, email):
            errors["password"] = problem
        elif password_confirmation is not None and password != password_confirmation:
            errors["password_confirmation"] = "The two passwords do not match."
        if "email" not in errors and await self.repository.get_by_email(email):
            errors["email"] = EMAIL_TAKEN
        if errors:
            raise ValidationFailed(errors)
        try:
            account = await self.repository.create(
                name=name, email=email, password_hash=hash_password(password)
            )
        except EmailTaken:
            raise ValidationFailed({"email": EMAIL_TAKEN}) from None
        await self.send_verification(account)
        return account

    async def authenticate(self, email: str, password: str) -> Account | None:
        account = await self.repository.get_by_email(normalize_email(email))
        if account is None:
            burn_verification_time(password)
            return None
        matches, needs_rehash = verify_password(account.password_hash, password)
        if not matches:
            return None
        if needs_rehash:
            account = (
                await self.repository.update(account.id, password_hash=hash_password(password))
                or account
            )
        return account

    async def get(self, user_id: int) -> Account | None:
        return await self.repository.get(user_id)

    # email verification ----------------------------------------------------------------

    async def send_verification(self, account: Account) -> None:
        token = links.make_link_token(
            self.secret_key, account.id, "verify", _verify_fingerprint(account), VERIFY_TTL
        )
        await self.mails.verification(
            to=account.email, name=account.name, url=self.link("verify_email", token=token)
        )

    async def verify_email(self, token: str) -> Account | None:
        """The verified account, or None when the link is invalid, expired or used."""
        claims = links.read_link_token(token, "verify")
        if claims is None:
            return None
        account = await self.repository.get(claims.user_id)
        if account is None or account.is_verified:
            return None
        if not links.link_signature_matches(self.secret_key, token, _verify_fingerprint(account)):
            return None
        return await self.repository.update(account.id, email_verified_at=now(), updated_at=now())

    # password reset --------------------------------------------------------------------

    async def request_password_reset(self, email: str) -> None:
        """Sends the mail when the account exists; says nothing either way (no enumeration)."""
        if problem := email_problem(email):
            raise ValidationFailed({"email": problem})
        account = await self.repository.get_by_email(normalize_email(email))
        if account is None:
            return
        token = links.make_link_token(
            self.secret_key, account.id, "reset", _reset_fingerprint(account), RESET_TTL
        )
        await self.mails.password_reset(
            to=account.email, name=account.name, url=self.link("reset_password", token=token)
        )

    async def account_for_reset(self, token: str) -> Account | None:
        claims = links.read_link_token(token, "reset")
        if claims is None:
            return None
        account = await self.repository.get(claims.user_id)
        if account is None:
            return None
        if not links.link_signature_matches(self.secret_key, token, _reset_fingerprint(account)):
            return None
        return account

    async def reset_password(self, token: str, password: str, confirmation: str) -> Account | None:
        """None when the link no longer works; ValidationFailed when the password is refused."""
        account = await self.account_for_reset(token)
        if account is None:
            return None
        self._check_new_password(account, password, confirmation)
        # Following a mailed link proves the address too.
        verified_at = account.email_verified_at or now()
        return await self.repository.update(
            account.id,
            password_hash=hash_password(password),
            email_verified_at=verified_at,
            updated_at=now(),
        )

    # settings --------------------------------------------------------------------------

    async def update_profile(self, account: Account, *, name: str, email: str) -> Account:
        name = name.strip()
        email = normalize_email(email)
        errors: dict[str, str] = {}
        if problem := text_problem(name, "your name", max_length=200, required=True):
            errors["name"] = problem
        if problem := email_problem(email):
            errors["email"] = problem
        email_changed = email != account.email
        if email_changed and "email" not in errors and await self.repository.get_by_email(email):
            errors["email"] = "Another account already uses this email address."
        if errors:
            raise ValidationFailed(errors)
        values: dict[str, object] = {"name": name, "updated_at": now()}
        if email_changed:
            # A new address must be proven again before the book opens.
            values.update(email=email, email_verified_at=None)
        try:
            updated = await self.repository.update(account.id, **values)
        except EmailTaken:
            raise ValidationFailed(
                {"email": "Another account already uses this email address."}
            ) from None
        assert updated is not None
        if email_changed:
            await self.send_verification(updated)
        return updated

    async def change_password(
        self, account: Account, *, current: str, password: str, confirmation: str
    ) -> Account:
        matches, _ = verify_password(account.password_hash, current)
        if not matches:
            raise ValidationFailed({"current_password": "This is not your current password."})
        self._check_new_password(account, password, confirmation)
        updated = await self.repository.update(
            account.id, password_hash=hash_password(password), updated_at=now()
        )
        assert updated is not None
        return updated

    def _check_new_password(self, account: Account, password: str, confirmation: str) -> None:
        if problem := password_problem(password, account.email):
            raise ValidationFailed({"password": problem})
        if password != confirmation:
            raise ValidationFailed({"password_confirmation": "The two passwords do not match."})

    # personal access tokens ------------------------------------------------------------

    async def create_token(
        self, account: Account, *, name: str, expires_in_days: int | None = None
    ) -> IssuedToken:
        name = name.strip()
        errors: dict[str, str] = {}
        if problem := text_problem(
            name, "a name for the token", max_length=TOKEN_NAME_MAX, required=True
        ):
            errors["name"] = problem
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
            errors["expires_in_days"] = f"Choose between 1 and {MAX_TOKEN_DAYS:,} days, or none."
        if errors:
            raise ValidationFailed(errors)
        secret = secrets.token_urlsafe(40)  # 54 characters
        expires_at = now() + timedelta(days=expires_in_days) if expires_in_days else None
        record = await self.repository.create_token(
            account.id, name=name, token_hash=_hash_secret(secret), expires_at=expires_at
        )
        return IssuedToken(record=record, token=f"{record.id}|{secret}")

    async def list_tokens(self, account: Account) -> list[TokenRecord]:
        return await self.repository.list_tokens(account.id)

    async def revoke_token(self, account: Account, token_id: int) -> bool:
        return await self.repository.delete_token(account.id, token_id)

    async def authenticate_token(
        self, raw: str, ip: str | None
    ) -> tuple[Account, TokenRecord] | None:
        token_id, separator, secret = raw.partition("|")
        if not separator or not token_id.isdigit() or len(secret) < 40 or len(token_id) > 18:
            return None
        record = await self.repository.get_token(int(token_id))
        if record is None or not hmac.compare_digest(record.token_hash, _hash_secret(secret)):
            return None
        moment = now()
        if record.expires_at is not None and record.expires_at <= moment:
            return None
        account = await self.repository.get(record.user_id)
        if account is None:
            return None
        if record.last_used_at is None or moment - record.last_used_at >= TOKEN_TOUCH_INTERVAL:
            await self.repository.touch_token(record.id, at=moment, ip=ip)
        return account, record
