"""Failure on purpose: processes killed, services stopped, on the full stack only."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.settings import Settings
from tests.jobs.workers import unique_queue

# Each test module says `pytestmark = FULL_STACK_ONLY`. Marked `chaos`: left out of
# `make test` until they run within CI's time; `make chaos` runs them.
FULL_STACK_ONLY = [
    pytest.mark.chaos,
    pytest.mark.parametrize("settings", ["fullstack"], indirect=True),
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The full-stack profile (a SAQ worker is what gets killed), with a queue of the
    test's own, the deployed chunk size, and room for close polling of the API."""
    return replace(
        settings, jobs_queue=unique_queue(), import_chunk_rows=5000, api_rate_limit=100_000
    )
