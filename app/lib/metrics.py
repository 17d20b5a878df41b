"""Prometheus metrics in the text exposition format, without a client library.

Requests are counted and timed in each web process (``RequestMetrics``, fed by the request
middleware with the route's path template, so `/customers/{slug:str}` is one series and
not one per customer); scrape every process. Job figures are read at scrape time from
what every process shares: the transfers table (imports and exports by kind and status,
with their run time) and the job queue (depth by state, the workers' counters), so any
web process answers for the whole installation.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

# Seconds; what a page, a fragment and an API call of this app spread over.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"  # no route: a 404 for a path nobody serves


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(values: Mapping[str, str]) -> str:
    if not values:
        return ""
    inner = ",".join(f'{name}="{_escape(str(value))}"' for name, value in values.items())
    return "{" + inner + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


@dataclass
class Family:
    """One metric family: its HELP, TYPE and samples (name suffix, labels, value)."""

    name: str
    kind: str  # counter, gauge, histogram
    help: str
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> None:
        self.samples.append((suffix, labels, value))

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        for suffix, labels, value in self.samples:
            yield f"{self.name}{suffix}{_labels(labels)} {_number(value)}"


def render(families: Sequence[Family]) -> str:
    return "".join(line + "\n" for family in families for line in family.lines())


@dataclass
class _Timing:
    buckets: list[int]
    total: float = 0.0
    count: int = 0


class RequestMetrics:
    """Request counts by method, route and status, and latency histograms by method and
    route, for this process. Thread-safe (recording is a few dict operations)."""

    def __init__(self, buckets: Sequence[float] = BUCKETS) -> None:
        self.buckets = tuple(buckets)
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = {}
        self._timings: dict[tuple[str, str], _Timing] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route)
        with self._lock:
            counted = (method, route, str(status))
            self._counts[counted] = self._counts.get(counted, 0) + 1
            timing = self._timings.get(key)
            if timing is None:
                timing = self._timings[key] = _Timing([0] * len(self.buckets))
            for index, bound in enumerate(self.buckets):
                if seconds <= bound:
                    timing.buckets[index] += 1
            timing.total += seconds
            timing.count += 1

    def families(self) -> list[Family]:
        requests = Family("crm_http_requests_total", "counter", "HTTP requests answered.")
        latency = Family(
            "crm_http_request_duration_seconds",
            "histogram",
            "Time from the request's arrival to the end of its response.",
        )
        with self._lock:
            counts = sorted(self._counts.items())
            timings = sorted(
                (key, _Timing(list(t.buckets), t.total, t.count))
                for key, t in self._timings.items()
            )
        for (method, route, status), count in counts:
            requests.add(count, method=method, route=route, status=status)
        for (method, route), timing in timings:
            for bound, count in zip(self.buckets, timing.buckets, strict=True):
                latency.add(count, "_bucket", method=method, route=route, le=_number(bound))
            latency.add(timing.count, "_bucket", method=method, route=route, le="+Inf")
            latency.add(timing.total, "_sum", method=method, route=route)
            latency.add(timing.count, "_count", method=method, route=route)
        return [requests, latency]
