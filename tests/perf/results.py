"""One place every benchmark writes its figures to, for the single table of `make bench`.

A benchmark calls ``record(...)`` once per figure, beside its own detailed printing::

    from tests.perf.results import record, size

    size("customers in the measured book", 1_000_000)
    record("search, one word: p95", 12.3, "ms", baseline=1.1, target=50)
    record("list throughput", 420, "req/s", baseline=900, target=300, better="higher")
    record("organization list, raw SQL", 3.2, "ms", note="median of 20")

``baseline`` is what the same work costs measured in the same run without the app (raw
SQL, raw COPY, the bare framework): the table shows ``value / baseline``. ``target`` is
the issue's number: PASS or MISS compares the value with it (``better`` says which side
is good); without a target the verdict is "info". ``tests/perf/report.py`` (a pytest
plugin) prints every recorded figure as one table at the end of the run and writes them
to ``var/bench/latest.json``.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any, Literal

Better = Literal["lower", "higher"]


@dataclass(frozen=True)
class Figure:
    figure: str
    value: float
    unit: str
    baseline: float | None = None
    target: float | None = None
    better: Better = "lower"
    note: str = ""
    source: str = ""  # the test that recorded it

    @property
    def ratio(self) -> float | None:
        """``value / baseline``: how many times the baseline's figure ours is."""
        if self.baseline is None or not self.baseline or math.isnan(self.baseline):
            return None
        return self.value / self.baseline

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "info"
        if math.isnan(self.value):
            return "MISS"
        met = self.value <= self.target if self.better == "lower" else self.value >= self.target
        return "PASS" if met else "MISS"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        data["verdict"] = self.verdict
        return {key: _finite(value) for key, value in data.items()}


def _finite(value: Any) -> Any:
    # JSON has no NaN: a figure that could not be measured is null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


FIGURES: list[Figure] = []
SIZES: dict[str, Any] = {}


def record(
    figure: str,
    value: float,
    unit: str = "",
    *,
    baseline: float | None = None,
    target: float | None = None,
    better: Better = "lower",
    note: str = "",
) -> Figure:
    """Add one figure to this run's table (and return it)."""
    if better not in ("lower", "higher"):
        raise ValueError(f'better must be "lower" or "higher", not {better!r}')
    source = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    entry = Figure(
        figure=figure,
        value=float(value),
        unit=unit,
        baseline=None if baseline is None else float(baseline),
        target=None if target is None else float(target),
        better=better,
        note=note,
        source=source,
    )
    FIGURES.append(entry)
    return entry


def size(name: str, value: Any) -> None:
    """A size the run used (rows seeded, users, seconds of load), for the JSON file."""
    SIZES[name] = value
