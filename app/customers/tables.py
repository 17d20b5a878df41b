"""The customers table. Composite keys and the full-text index live in the migration."""

from piccolo.columns import BigSerial, ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import User


class Customer(Table, tablename="customers"):
    id = BigSerial(primary_key=True)
    user_id = ForeignKey(references=User, on_delete=OnDelete.cascade, null=False)
    slug = Varchar(length=220)
    name = Varchar(length=200)
    email = Varchar(length=254)
    # Trimmed, lower-cased email: unique per user, the key imports dedupe on.
    email_normalized = Varchar(length=254)
    phone = Varchar(length=50, default="")
    organization = Varchar(length=200, default="")
    job_title = Varchar(length=200, default="")
    notes = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
