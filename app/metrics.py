"""`GET /metrics`: Prometheus text format for the operator, behind METRICS_TOKEN.

Unset METRICS_TOKEN: the route is "not found" like any unknown path. Set: it answers only
to `Authorization: Bearer <METRICS_TOKEN>` (compared in constant time), 401 otherwise.
What it reports is described in ``app.lib.metrics``.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.response import Response
from litestar.types import ControllerRouterHandler
from piccolo.querystring import QueryString

from app.lib.metrics import Family, RequestMetrics, render
from app.transfers.tables import Transfer

logger = logging.getLogger("crm.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _authorized(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def _seconds_sql(postgres: bool) -> str:
    if postgres:
        return "EXTRACT(EPOCH FROM (finished_at - started_at))"
    return "(julianday(finished_at) - julianday(started_at)) * 86400.0"


async def transfer_families(postgres: bool) -> list[Family]:
    """Imports and exports by kind and status, and the run time of the finished ones."""
    rows: list[dict[str, Any]] = await Transfer.raw(
        "{}",
        QueryString(
            f"SELECT kind, status, COUNT(*) AS n, "  # noqa: S608
            f"COALESCE(SUM(CASE WHEN started_at IS NOT NULL AND finished_at IS NOT NULL "
            f"THEN {_seconds_sql(postgres)} END), 0) AS seconds "
            "FROM transfers GROUP BY kind, status ORDER BY kind, status"
        ),
    )
    jobs = Family("crm_transfer_jobs", "gauge", "Imports and exports by kind and status.")
    seconds = Family(
        "crm_transfer_job_seconds_total",
        "counter",
        "Run time (start to finish) of the imports and exports in each status, summed.",
    )
    for row in rows:
        jobs.add(int(row["n"]), kind=row["kind"], status=row["status"])
        seconds.add(float(row["seconds"] or 0), kind=row["kind"], status=row["status"])
    return [jobs, seconds]


async def queue_families(runner: Any) -> list[Family]:
    """Jobs in the queue by state, and each worker's counters."""
    info = await runner.info(limit=0)
    depth = Family("crm_queue_jobs", "gauge", "Jobs in the queue by state.")
    for status, count in sorted(info.counts.items()):
        depth.add(count, queue=info.name, status=str(status))
    workers = Family("crm_worker_jobs_total", "counter", "Jobs each worker has finished.")
    seen = Family("crm_workers", "gauge", "Workers that reported recently.")
    seen.add(len(info.workers), queue=info.name)
    for worker in info.workers:
        for outcome in ("complete", "failed", "retried", "aborted"):
            workers.add(getattr(worker, outcome), worker=worker.id, outcome=outcome)
    return [depth, seen, workers]


@get("/metrics", name="metrics", include_in_schema=False, cache=False)
async def metrics(request: Request) -> Response[str]:
    state = request.app.state
    token = state.settings.metrics_token
    if not token:
        raise NotFoundException()
    if not _authorized(request, token):
        return Response(
            "Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.\n",
            status_code=401,
            media_type="text/plain; charset=utf-8",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    request_metrics: RequestMetrics = state.metrics
    families = request_metrics.families()
    up = Family("crm_up", "gauge", "1 for each part that answered this scrape, 0 otherwise.")
    for part, collect in (
        ("database", lambda: transfer_families(state.settings.uses_postgres)),
        ("queue", lambda: queue_families(state.jobs)),
    ):
        try:
            families += await collect()
            up.add(1, part=part)
        except Exception:  # a scrape reports what it can; the log says what failed
            logger.warning("metrics: %s could not be read", part, exc_info=True)
            up.add(0, part=part)
    families.append(up)
    return Response(render(families), media_type=CONTENT_TYPE)


metrics_route_handlers: list[ControllerRouterHandler] = [metrics]
