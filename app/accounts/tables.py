"""Users and their personal access tokens."""

from piccolo.columns import (
    JSONB,
    BigSerial,
    Boolean,
    ForeignKey,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class User(Table, tablename="users"):
    id = BigSerial(primary_key=True)
    name = Varchar(length=200)
    # Stored lower-cased by the service; unique so two accounts never share a mailbox.
    email = Varchar(length=254, unique=True, index=True)
    password_hash = Varchar(length=255)
    email_verified_at = Timestamptz(null=True, default=None)
    is_admin = Boolean(default=False)
    # When the user last looked at /jobs: the jobs badge counts what finished after it.
    jobs_seen_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class ApiToken(Table, tablename="api_tokens"):
    id = BigSerial(primary_key=True)
    user_id = ForeignKey(references=User, on_delete=OnDelete.cascade, null=False, index=True)
    name = Varchar(length=100)
    # sha256 hex of the secret part; the clear token is shown once and never stored.
    token_hash = Varchar(length=64, unique=True)
    abilities = JSONB(default=["*"])
    last_used_at = Timestamptz(null=True, default=None)
    last_used_ip = Varchar(length=45, null=True, default=None)
    expires_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
