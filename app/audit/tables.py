"""Audit entries and the index of archived entries in object storage."""

from piccolo.columns import (
    JSONB,
    BigInt,
    BigSerial,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import User


class AuditLog(Table, tablename="audit_logs"):
    id = BigSerial(primary_key=True)
    user_id = ForeignKey(references=User, on_delete=OnDelete.cascade, null=False)
    # Plain ids, not foreign keys: an entry must outlive the actor and the customer.
    actor_id = BigInt(null=True, default=None)
    customer_id = BigInt(null=True, default=None)
    customer_label = Varchar(length=500, default="")
    event = Varchar(length=20)
    old_values = JSONB(null=True, default=None)
    new_values = JSONB(null=True, default=None)
    ip = Varchar(length=45, null=True, default=None)
    user_agent = Varchar(length=500, null=True, default=None)
    request_id = Varchar(length=64, null=True, default=None)
    import_id = BigInt(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class AuditArchive(Table, tablename="audit_archives"):
    id = BigSerial(primary_key=True)
    user_id = ForeignKey(references=User, on_delete=OnDelete.cascade, null=False)
    object_key = Text()
    first_at = Timestamptz()
    last_at = Timestamptz()
    entries = Integer()
    sha256 = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())
