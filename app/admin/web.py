"""Admin pages: the queue monitor ``/admin/queues``.

Only accounts with ``is_admin`` (granted with ``crm make-admin EMAIL``) see them; everyone
else, signed out included, gets 404, so the pages' existence is not leaked. The page
reads the job runner the app was built with: SAQ's queue on Redis (its workers, and its
queued, active and failed jobs) or, in the embedded default, the in-process runner.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Body
from litestar.response import Redirect, Response
from litestar.types import ControllerRouterHandler

from app.accounts.auth import current_account, log_auth_event
from app.lib.flash import flash
from app.lib.htmx import render
from app.lib.jobs import JobActionRefused, JobInfo, JobNotFoundError, JobRunner

LIST_LIMIT = 50
GONE = (
    "Job {job_id} is not in the queue any more: finished jobs are forgotten after a "
    "while (10 minutes by default)."
)

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


async def admin_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    account = current_account(connection)
    if account is None or not account.is_verified or not account.is_admin:
        raise NotFoundException()


def _runner(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.jobs
    return runner


class AdminPages(Controller):
    path = "/admin"
    guards = [admin_guard]
    include_in_schema = False

    @get("/queues", name="admin_queues")
    async def queues(self, request: Request) -> Response[str]:
        info = await _runner(request).info(limit=LIST_LIMIT)
        return render(
            request,
            "admin/queues.html",
            {"queue": info, "limit": LIST_LIMIT, "statuses": list(info.counts)},
        )

    @post("/queues/retry", name="admin_job_retry")
    async def retry(self, request: Request, data: Form) -> Redirect:
        return await self._act(request, data, "retry")

    @post("/queues/abort", name="admin_job_abort")
    async def abort(self, request: Request, data: Form) -> Redirect:
        return await self._act(request, data, "abort")

    async def _act(self, request: Request, data: dict[str, str], action: str) -> Redirect:
        job_id = str(data.get("job_id", "")).strip()
        back = request.app.route_reverse("admin_queues")
        if not job_id:
            flash(request, "Choose a job from the lists below.", "error")
            return Redirect(back, status_code=303)
        runner = _runner(request)
        try:
            job: JobInfo = await (
                runner.retry(job_id) if action == "retry" else runner.abort(job_id)
            )
        except JobNotFoundError:
            flash(request, GONE.format(job_id=job_id), "error")
            return Redirect(back, status_code=303)
        except JobActionRefused as refused:
            flash(request, str(refused), "error")
            return Redirect(back, status_code=303)
        log_auth_event(request, f"job_{action}", job_id=job_id, function=job.function)
        if action == "retry":
            message = f"Job {job_id} ({job.function}) is queued again."
        elif job.status == "aborted":
            message = f"Job {job_id} ({job.function}) was aborted."
        else:
            message = (
                f"Job {job_id} ({job.function}) is being aborted: "
                "its worker stops it within a second."
            )
        flash(request, message)
        return Redirect(back, status_code=303)


admin_route_handlers: list[ControllerRouterHandler] = [AdminPages]
