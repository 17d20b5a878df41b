"""A SAQ settings module for the tests: ``saq tests.jobs.worker_settings.settings``.

A callable, which SAQ calls at start-up, so importing this module reads no environment.
"""

from __future__ import annotations

from typing import Any

from app.settings import Settings
from jobs.worker import make_worker_settings
from tests.jobs.sample_jobs import SAMPLE_JOBS, SAMPLE_SCHEDULED


def settings() -> dict[str, Any]:
    return make_worker_settings(Settings.from_env(), SAMPLE_JOBS, SAMPLE_SCHEDULED)
