"""The only place that queries users and tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from piccolo.columns import Column
from piccolo.querystring import QueryString

from app.accounts.tables import ApiToken, User
from app.lib.db import is_unique_violation


class EmailTaken(Exception):
    pass


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    email: str
    password_hash: str
    email_verified_at: datetime | None
    is_admin: bool
    created_at: datetime
    # The jobs badge (see JOBS_BADGE_SQL): read with the account by ``get``, on every page.
    jobs_seen_at: datetime | None = None
    jobs_unseen: int = 0
    jobs_active: bool = False

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None


@dataclass(frozen=True)
class TokenRecord:
    id: int
    user_id: int
    name: str
    token_hash: str
    abilities: list[str]
    last_used_at: datetime | None
    last_used_ip: str | None
    expires_at: datetime | None
    created_at: datetime


ACCOUNT_FIELDS = (
    User.id,
    User.name,
    User.email,
    User.password_hash,
    User.email_verified_at,
    User.is_admin,
    User.created_at,
    User.jobs_seen_at,
)

# The signed-in account and its jobs badge in one statement (the session middleware
# reads the account on every page anyway): how many of the user's imports and exports
# finished since they last looked at /jobs, and whether one is queued or running. Both
# subqueries are ranges of the index transfers (user_id, status, finished_at); the
# COALESCE (never looked: everything counts) keeps the finished_at bound a plain one.
JOBS_BADGE_SQL = """
SELECT u.id, u.name, u.email, u.password_hash, u.email_verified_at, u.is_admin,
    u.created_at, u.jobs_seen_at,
    (SELECT count(*) FROM transfers AS t
        WHERE t.user_id = u.id AND t.status IN ('completed', 'failed', 'cancelled')
        AND t.finished_at > COALESCE(u.jobs_seen_at, '1970-01-01 00:00:00+00:00')) AS jobs_unseen,
    (SELECT count(*) FROM transfers AS t
        WHERE t.user_id = u.id AND t.status IN ('queued', 'running')) AS jobs_running
FROM users AS u WHERE u.id = {}
"""


def _timestamp(value: Any) -> datetime | None:
    # SQLite hands back text where it cannot see the column's declared type.
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _required_timestamp(value: Any) -> datetime:
    found = _timestamp(value)
    assert found is not None, "a NOT NULL timestamp came back empty"
    return found


def _account(row: dict[str, Any]) -> Account:
    return Account(**row)


def _token(row: dict[str, Any]) -> TokenRecord:
    return TokenRecord(**row)


class AccountRepository(Protocol):
    async def get(self, user_id: int) -> Account | None: ...
    async def get_by_email(self, email: str) -> Account | None: ...
    async def create(self, *, name: str, email: str, password_hash: str) -> Account: ...
    async def update(self, user_id: int, **values: Any) -> Account | None: ...
    async def create_token(
        self, user_id: int, *, name: str, token_hash: str, expires_at: datetime | None
    ) -> TokenRecord: ...
    async def list_tokens(self, user_id: int) -> list[TokenRecord]: ...
    async def get_token(self, token_id: int) -> TokenRecord | None: ...
    async def delete_token(self, user_id: int, token_id: int) -> bool: ...
    async def touch_token(self, token_id: int, *, at: datetime, ip: str | None) -> None: ...


class PiccoloAccountRepository:
    async def get(self, user_id: int) -> Account | None:
        rows = await User.raw("{}", QueryString(JOBS_BADGE_SQL, user_id))
        if not rows:
            return None
        row = rows[0]
        return Account(
            id=int(row["id"]),
            name=row["name"],
            email=row["email"],
            password_hash=row["password_hash"],
            email_verified_at=_timestamp(row["email_verified_at"]),
            is_admin=bool(row["is_admin"]),
            created_at=_required_timestamp(row["created_at"]),
            jobs_seen_at=_timestamp(row["jobs_seen_at"]),
            jobs_unseen=int(row["jobs_unseen"] or 0),
            jobs_active=bool(row["jobs_running"]),
        )

    async def mark_jobs_seen(self, user_id: int, at: datetime) -> None:
        """Everything that finished up to ``at`` is seen (never moves the mark back)."""
        await User.update({User.jobs_seen_at: at}).where(
            (User.id == user_id) & ((User.jobs_seen_at.is_null()) | (User.jobs_seen_at < at))
        )

    async def set_admin(self, email: str, is_admin: bool) -> Account | None:
        """Grant or revoke the queue monitor; None when no account has that email."""
        rows = (
            await User.update({User.is_admin: is_admin})
            .where(User.email == email)
            .returning(*ACCOUNT_FIELDS)
        )
        return _account(rows[0]) if rows else None

    async def get_by_email(self, email: str) -> Account | None:
        row = await User.select(*ACCOUNT_FIELDS).where(User.email == email).first()
        return _account(row) if row else None

    async def create(self, *, name: str, email: str, password_hash: str) -> Account:
        try:
            rows = await User.insert(
                User(name=name, email=email, password_hash=password_hash)
            ).returning(*ACCOUNT_FIELDS)
        except Exception as error:
            if is_unique_violation(error):
                raise EmailTaken(email) from error
            raise
        return _account(rows[0])

    async def update(self, user_id: int, **values: Any) -> Account | None:
        columns: dict[Column | str, Any] = {
            User._meta.get_column_by_name(name): value for name, value in values.items()
        }
        try:
            rows = await User.update(columns).where(User.id == user_id).returning(*ACCOUNT_FIELDS)
        except Exception as error:
            if is_unique_violation(error):
                raise EmailTaken(values.get("email", "")) from error
            raise
        return _account(rows[0]) if rows else None

    async def create_token(
        self, user_id: int, *, name: str, token_hash: str, expires_at: datetime | None
    ) -> TokenRecord:
        rows = await ApiToken.insert(
            ApiToken(user_id=user_id, name=name, token_hash=token_hash, expires_at=expires_at)
        ).returning(*ApiToken.all_columns())
        return _token(rows[0])

    async def list_tokens(self, user_id: int) -> list[TokenRecord]:
        rows = (
            await ApiToken.select(*ApiToken.all_columns())
            .where(ApiToken.user_id == user_id)
            .order_by(ApiToken.created_at, ascending=False)
            .order_by(ApiToken.id, ascending=False)
        )
        return [_token(row) for row in rows]

    async def get_token(self, token_id: int) -> TokenRecord | None:
        # The one lookup not scoped by owner: it is how a bearer token finds its owner.
        row = await ApiToken.select(*ApiToken.all_columns()).where(ApiToken.id == token_id).first()
        return _token(row) if row else None

    async def delete_token(self, user_id: int, token_id: int) -> bool:
        rows = await (
            ApiToken.delete()
            .where((ApiToken.user_id == user_id) & (ApiToken.id == token_id))
            .returning(ApiToken.id)
        )
        return bool(rows)

    async def touch_token(self, token_id: int, *, at: datetime, ip: str | None) -> None:
        await ApiToken.update({ApiToken.last_used_at: at, ApiToken.last_used_ip: ip}).where(
            ApiToken.id == token_id
        )
