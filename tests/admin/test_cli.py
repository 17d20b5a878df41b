"""``crm make-admin [--revoke] EMAIL``, run as a person runs it: the command in a
subprocess, against the profile's database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import Any

from app.accounts.repository import PiccoloAccountRepository
from app.settings import Settings
from tests.fixtures.services import ROOT


def crm(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "STORAGE_DIR": settings.storage_dir,
        "MAIL_URL": settings.mail_url,
    }
    for name in ("REDIS_URL", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_make_admin_grants_and_revokes(settings: Settings, make_user: Any) -> None:
    user_id = await make_user("Ada Admin")
    accounts = PiccoloAccountRepository()
    account = await accounts.get(user_id)
    assert account is not None
    assert not account.is_admin

    done = crm(settings, "make-admin", account.email.upper())
    assert done.returncode == 0, done.stderr
    assert f"{account.email} is now an admin" in done.stdout
    assert (await accounts.get(user_id)).is_admin  # type: ignore[union-attr]

    done = crm(settings, "make-admin", "--revoke", account.email)
    assert done.returncode == 0, done.stderr
    assert f"{account.email} is no longer an admin" in done.stdout
    assert not (await accounts.get(user_id)).is_admin  # type: ignore[union-attr]


async def test_make_admin_of_an_unknown_email_says_so_and_exits_1(
    settings: Settings, engine: Any
) -> None:
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    done = crm(settings, "make-admin", email)
    assert done.returncode == 1
    assert f"no account with the email {email!r}" in done.stdout
