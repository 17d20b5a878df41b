"""Jobs for the runner tests: each leaves a line in a file, so a test can count runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from app.lib.jobs import JobDefinition, ScheduledJob, heartbeat


def _append(path: str | Path, line: str) -> None:
    with open(path, "a") as handle:
        handle.write(line + "\n")


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def tick_path(ctx: dict[str, Any]) -> Path:
    """Where the scheduled job writes: next to the profile's storage folder."""
    return Path(ctx["settings"].storage_dir).parent / "ticks.log"


async def record(ctx: dict[str, Any], path: str, delay: float = 0.0) -> str:
    await asyncio.sleep(delay)
    _append(path, f"{ctx['job_id']} {ctx['attempt']}")
    return "recorded"


async def always_fail(ctx: dict[str, Any], path: str) -> None:
    _append(path, f"{ctx['attempt']}")
    raise RuntimeError("this job always fails")


async def overrun(ctx: dict[str, Any], path: str) -> None:
    _append(path, f"{ctx['attempt']}")
    await asyncio.sleep(30)


async def context_keys(ctx: dict[str, Any], path: str) -> None:
    _append(path, " ".join(sorted(ctx)))


async def beating(ctx: dict[str, Any], path: str) -> None:
    for _ in range(3):
        await asyncio.sleep(0.1)
        await heartbeat(ctx)
    _append(path, "alive")


async def tick(ctx: dict[str, Any]) -> None:
    _append(tick_path(ctx), "tick")


RECORD = JobDefinition("record", record, timeout=30, retries=1)
ALWAYS_FAIL = JobDefinition("always_fail", always_fail, timeout=30, retries=2, retry_delay=0.1)
OVERRUN = JobDefinition("overrun", overrun, timeout=1, retries=1)
CONTEXT_KEYS = JobDefinition("context_keys", context_keys, timeout=30, retries=1)
BEATING = JobDefinition("beating", beating, timeout=30, retries=1, heartbeat=5)
TICK = JobDefinition("tick", tick, timeout=30, retries=1)

SAMPLE_JOBS = [RECORD, ALWAYS_FAIL, OVERRUN, CONTEXT_KEYS, BEATING]
# Every second (croniter's sixth field), so a test sees it fire without waiting a minute.
SAMPLE_SCHEDULED = [ScheduledJob(TICK, cron="* * * * * *")]
