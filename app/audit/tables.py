"""Audit entries and the index of archived entries in object storage."""

from piccolo.columns import (
    JSON,
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
    # The hash chain (app.audit.chain): sha256 hex of this entry's content, which
    # includes prev_hash, the hash of the user's previous entry.
    prev_hash = Varchar(length=64, default="")
    hash = Varchar(length=64, default="")


class AuditArchive(Table, tablename="audit_archives"):
    id = BigSerial(primary_key=True)
    user_id = ForeignKey(references=User, on_delete=OnDelete.cascade, null=False)
    object_key = Text()
    first_at = Timestamptz()
    last_at = Timestamptz()
    entries = Integer()
    sha256 = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())
    # The ids of the first and last entry in the object, and the hash of the last one:
    # where the chain continues, for the verifier and for the next entry once the
    # database holds none of the user's entries.
    first_id = BigInt(default=0)
    last_id = BigInt(default=0)
    last_hash = Varchar(length=64, default="")
    # The customers with entries in the object (a JSON list), so a customer's history
    # skips objects without them; null when there are too many to list (read it).
    customer_ids = JSON(null=True, default=None)
