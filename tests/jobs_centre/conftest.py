"""The jobs centre on both profiles: people signed in on the app's client, and transfers
in any state (inserted through the transfers repository: running, failed or finished
states are slow or hard to reach through a real job)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.accounts.conftest import (  # noqa: F401  (fixtures)
    Person,
    html,
    member,
    newcomer,
)
from tests.customers.conftest import become, fragment_roots  # noqa: F401

HX = {"HX-Request": "true"}
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def user_id_of(client: Any, email: str) -> int:
    from app.accounts.repository import PiccoloAccountRepository

    account = client.blocking_portal.call(PiccoloAccountRepository().get_by_email, email)
    assert account is not None, f"no account {email}"
    return int(account.id)


def add_transfer(client: Any, email: str, **values: Any) -> Any:
    """A transfer of the person with ``email``, with these column values, on the app's loop."""
    from app.transfers.repository import PiccoloTransferRepository

    owner = user_id_of(client, email)
    values = {"kind": "import", "status": "queued", "original_filename": "people.csv"} | values
    return client.blocking_portal.call(PiccoloTransferRepository().create, owner, values)


def set_transfer(client: Any, email: str, transfer_id: int, **values: Any) -> None:
    from app.transfers.repository import PiccoloTransferRepository

    owner = user_id_of(client, email)
    client.blocking_portal.call(PiccoloTransferRepository().update, owner, transfer_id, values)


def minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)
