"""The archive job in a process of its own, as a worker runs it: prints one JSON line
with what it did, how long it took and the process's peak memory (maxrss).

    python -m tests.perf.audit_archive_run   (settings from the environment)
"""

from __future__ import annotations

import asyncio
import json
import resource
import time

from app.settings import Settings
from jobs.audit import archive_audit_logs
from jobs.worker import build_job_context, close_job_context


def rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across fork and exec, so
    a child of a big process (pytest) would report its parent's peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main() -> None:
    settings = Settings.from_env()
    ctx = await build_job_context(settings)
    ready = rss_mb()
    try:
        began = time.perf_counter()
        done = await archive_audit_logs(ctx)
        seconds = time.perf_counter() - began
    finally:
        await close_job_context(ctx)
    print(json.dumps({**done, "seconds": seconds, "rss_ready_mb": ready, "rss_peak_mb": rss_mb()}))


if __name__ == "__main__":
    asyncio.run(main())
