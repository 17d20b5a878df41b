"""The pytest hooks of `make bench` (tests/perf/conftest.py imports them: a conftest below
the rootdir may not name ``pytest_plugins``): one table of every figure the run recorded
(``tests.perf.results.record``), printed at the end, and the same as JSON in
``var/bench/latest.json`` with the machine it ran on and the sizes it used.

``python -m tests.perf.report --check`` is what `make bench` runs first: PostgreSQL and
Redis must answer, or it stops with a message saying which one and how to point at it.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.services import ROOT, TEST_DATABASE_URL, TEST_REDIS_URL
from tests.perf.results import FIGURES, SIZES, Figure

OUTPUT = ROOT / "var" / "bench" / "latest.json"
# When the run began: this module is imported with tests/perf/conftest.py, at collection.
_STARTED: dict[str, Any] = {
    "date": datetime.now(UTC).isoformat(timespec="seconds"),
    "load": os.getloadavg()[0],
}


# --- the machine ---------------------------------------------------------------------------


def _proc_field(path: str, name: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _postgres_version() -> str:
    import asyncpg

    async def ask() -> str:
        conn = await asyncpg.connect(TEST_DATABASE_URL, timeout=5)
        try:
            version = await conn.fetchval("SHOW server_version")
            buffers = await conn.fetchval("SHOW shared_buffers")
            # shared_buffers decides whether a large book's pages are buffer hits or reads
            # through the OS cache: the figures depend on it, so the table says it.
            return f"{version}, shared_buffers {buffers}"
        finally:
            await conn.close()

    try:
        return asyncio.run(ask())
    except Exception as error:  # the table still prints without it
        return f"unknown ({type(error).__name__})"


def machine() -> dict[str, Any]:
    memory_kb = _proc_field("/proc/meminfo", "MemTotal").split(" ")[0]
    return {
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "memory_gb": round(int(memory_kb) / 1024 / 1024, 1) if memory_kb.isdigit() else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": _postgres_version(),
    }


def _environment() -> dict[str, str]:
    return {key: value for key, value in sorted(os.environ.items()) if key.startswith("BENCH_")}


# --- the table -----------------------------------------------------------------------------


def _number(value: float | None, unit: str = "") -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 1000 or value.is_integer():
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text}{unit}" if unit == "x" else f"{text} {unit}".rstrip()


def _target(figure: Figure) -> str:
    if figure.target is None:
        return ""
    sign = "≤" if figure.better == "lower" else "≥"
    return f"{sign} {_number(figure.target, figure.unit)}"


def table(figures: list[Figure]) -> str:
    header = ("figure", "ours", "baseline", "ratio", "target", "verdict")
    rows = [
        (
            f.figure,
            _number(f.value, f.unit),
            _number(f.baseline, f.unit),
            "" if f.ratio is None else f"{f.ratio:.2f}x",
            _target(f),
            f.verdict,
        )
        for f in figures
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = (False, True, True, True, True, False)

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(width) if align else cell.ljust(width)
            for cell, width, align in zip(cells, widths, right, strict=True)
        ).rstrip()

    lines = [line(header), "  ".join("-" * width for width in widths)]
    lines += [line(row) for row in rows]
    notes = [f"  - {f.figure}: {f.note}" for f in figures if f.note]
    if notes:
        lines += ["notes:", *notes]
    return "\n".join(lines)


def summary() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "started": _STARTED.get("date"),
        "quick": os.environ.get("BENCH_QUICK", "") not in ("", "0", "false"),
        "machine": machine(),
        "load_average_1min": {"start": _STARTED.get("load"), "end": os.getloadavg()[0]},
        "sizes": dict(SIZES),
        "environment": _environment(),
        "figures": [figure.as_json() for figure in FIGURES],
        "counts": {
            verdict: sum(1 for f in FIGURES if f.verdict == verdict)
            for verdict in ("PASS", "MISS", "info")
        },
    }


# --- the pytest hooks ------------------------------------------------------------------------


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not FIGURES:
        return
    data = summary()
    _STARTED["summary"] = data
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not FIGURES:
        return
    data = _STARTED.get("summary") or summary()
    box = data["machine"]
    load = data["load_average_1min"]
    write = terminalreporter.write_line
    terminalreporter.section("make bench: every figure of this run")
    write(
        f"{data['date']}{' (BENCH_QUICK)' if data['quick'] else ''}; {box['cores']} cores "
        f"({box['cpu']}), {box['memory_gb']} GB; Python {box['python']}; "
        f"PostgreSQL {box['postgresql']}"
    )
    write(
        f"load average (1 min) at start / end: {load['start']:.1f} / {load['end']:.1f} "
        "(other work on the same cores moves the timings)"
    )
    if data["sizes"]:
        write("sizes:")
        for key, value in data["sizes"].items():
            write(f"  {key}: {value:,}" if isinstance(value, int) else f"  {key}: {value}")
    write("")
    for text in table(FIGURES).splitlines():
        write(text)
    counts = data["counts"]
    write("")
    write(
        f"{len(FIGURES)} figures: {counts['PASS']} PASS, {counts['MISS']} MISS, "
        f"{counts['info']} info; ratio = ours / baseline; JSON: {OUTPUT.relative_to(ROOT)}"
    )


# --- `make bench` checks the services first -------------------------------------------------


def check_services() -> list[str]:
    """What does not answer, each as a sentence (empty: all good)."""
    import asyncpg
    import redis

    problems = []

    async def postgres() -> None:
        conn = await asyncpg.connect(TEST_DATABASE_URL, timeout=5)
        await conn.close()

    try:
        asyncio.run(postgres())
    except Exception as error:
        problems.append(
            f"PostgreSQL does not answer at {TEST_DATABASE_URL} ({type(error).__name__}: "
            f"{error}). Start it, or set TEST_DATABASE_URL to a server this user may create "
            "databases on."
        )
    try:
        client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3)
        client.ping()
        client.close()
    except Exception as error:
        problems.append(
            f"Redis does not answer at {TEST_REDIS_URL} ({type(error).__name__}: {error}). "
            "Start it, or set TEST_REDIS_URL (redis://host:port/db)."
        )
    return problems


if __name__ == "__main__":
    if sys.argv[1:] != ["--check"]:
        sys.exit("usage: python -m tests.perf.report --check")
    found = check_services()
    for problem in found:
        print(f"make bench: {problem}", file=sys.stderr)
    if found:
        sys.exit(1)
    print(f"make bench: PostgreSQL ({TEST_DATABASE_URL}) and Redis ({TEST_REDIS_URL}) answer.")
