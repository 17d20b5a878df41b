"""``crm make-admin EMAIL`` (and ``--revoke``): the only way to grant the queue monitor.
Exit status 0 when done, 1 when no account has that email."""

from __future__ import annotations

import sys
from typing import TextIO

from app.accounts.repository import PiccoloAccountRepository
from app.lib.db import bind_tables, build_engine, close_database, open_database
from app.lib.validation import normalize_email
from app.settings import Settings

DONE, NO_USER = 0, 1


async def make_admin_command(
    settings: Settings, email: str, *, revoke: bool = False, out: TextIO = sys.stdout
) -> int:
    engine = build_engine(settings)
    bind_tables(engine)
    await open_database(engine, min(settings.database_pool_size, 2))
    try:
        address = normalize_email(email)
        account = await PiccoloAccountRepository().set_admin(address, not revoke)
        if account is None:
            print(
                f"no account with the email {email!r}: check the address "
                "(the person registers at /register first)",
                file=out,
            )
            return NO_USER
        if revoke:
            print(f"{account.email} is no longer an admin", file=out)
        else:
            print(f"{account.email} is now an admin: /admin/queues is open to them", file=out)
        return DONE
    finally:
        await close_database(engine)
