"""The queue monitor: both job runners (in-process, and SAQ with a real ``saq`` worker on
a queue of its own, from tests/jobs), and admins signed in on the app's client."""

from __future__ import annotations

from typing import Any

from tests.accounts.conftest import (  # noqa: F401  (fixtures)
    Person,
    html,
    member,
)
from tests.jobs.conftest import marker, runner, saq_worker  # noqa: F401  (fixtures)


def make_admin(client: Any, email: str, is_admin: bool = True) -> None:
    """What ``crm make-admin`` does, on the app's event loop."""
    from app.accounts.repository import PiccoloAccountRepository

    account = client.blocking_portal.call(PiccoloAccountRepository().set_admin, email, is_admin)
    assert account is not None, f"no account {email}"
