"""What the accounts API reads and writes: the shapes published in the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime

import msgspec

from app.accounts.repository import Account, TokenRecord
from app.accounts.service import IssuedToken

# Field types only: the rules (lengths, formats, common passwords) live in the service,
# which answers in words, field by field.


class Registration(msgspec.Struct):
    name: str
    email: str
    password: str


class TokenRequest(msgspec.Struct):
    email: str
    password: str
    name: str
    expires_in_days: int | None = None


class AccountOut(msgspec.Struct):
    id: int
    name: str
    email: str
    email_verified: bool

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            id=account.id,
            name=account.name,
            email=account.email,
            email_verified=account.is_verified,
        )


class IssuedTokenOut(msgspec.Struct):
    """The clear token, shown in this response only: store it now."""

    id: int
    name: str
    token: str
    expires_at: datetime | None

    @classmethod
    def of(cls, issued: IssuedToken) -> IssuedTokenOut:
        return cls(
            id=issued.record.id,
            name=issued.record.name,
            token=issued.token,
            expires_at=issued.record.expires_at,
        )


class TokenOut(msgspec.Struct):
    """A token as listed: never its value, never its hash."""

    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    last_used_ip: str | None
    expires_at: datetime | None

    @classmethod
    def of(cls, record: TokenRecord) -> TokenOut:
        return cls(
            id=record.id,
            name=record.name,
            created_at=record.created_at,
            last_used_at=record.last_used_at,
            last_used_ip=record.last_used_ip,
            expires_at=record.expires_at,
        )


class ErrorOut(msgspec.Struct):
    """Every API error that is not a validation error."""

    error: str
    status: int
    request_id: str


class ValidationErrorOut(msgspec.Struct):
    """422: what is wrong, field by field (``body`` when the body itself is unreadable)."""

    errors: dict[str, str]
