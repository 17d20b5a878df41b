"""``crm audit-verify --user EMAIL|ID``: walk a user's audit hash chain and say where it
breaks. Exit status 0 when intact, 1 at a break, 2 when there is no such user."""

from __future__ import annotations

import sys
from typing import TextIO

from app.accounts.repository import Account, PiccoloAccountRepository
from app.audit.models import ChainReport
from app.audit.service import AuditService
from app.lib.db import bind_tables, build_engine, close_database, open_database
from app.lib.storage import build_storage
from app.lib.validation import normalize_email
from app.settings import Settings

INTACT, BROKEN, NO_USER = 0, 1, 2


async def find_account(user: str) -> Account | None:
    accounts = PiccoloAccountRepository()
    if user.strip().isdigit():
        return await accounts.get(int(user))
    return await accounts.get_by_email(normalize_email(user))


def describe(report: ChainReport, account: Account) -> str:
    who = f"user {account.id} ({account.email})"
    found = report.first_break
    if found is None:
        objects = f"{report.archives:,} archive object{'' if report.archives == 1 else 's'}"
        return (
            f"audit chain of {who}: intact, {report.entries:,} entries checked "
            f"({objects}, then the database)"
        )
    entry = f"entry {found.entry_id}" if found.entry_id is not None else "an entry"
    return (
        f"audit chain of {who}: BROKEN at {entry}, position {found.position:,} "
        f"in {found.location}: {found.reason} ({found.detail})"
    )


async def verify_command(settings: Settings, user: str, out: TextIO = sys.stdout) -> int:
    engine = build_engine(settings)
    bind_tables(engine)
    await open_database(engine, min(settings.database_pool_size, 2))
    try:
        account = await find_account(user)
        if account is None:
            print(f"no user {user!r}", file=out)
            return NO_USER
        storage = build_storage(settings)
        await storage.start()
        report = await AuditService(storage=storage).verify_chain(account.id)
        print(describe(report, account), file=out)
        return INTACT if report.intact else BROKEN
    finally:
        await close_database(engine)
