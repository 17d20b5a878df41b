"""The jobs centre ``/jobs``: the user's imports and exports in one list, live.

Each queued or running row polls its own fragment (``job_row``) every second; the
fragment of a finished row comes back without the trigger, so its polling stops. The
badge on the "Jobs" link (``jobs_badge``) counts what finished since the user last
looked here: the account carries the count (read with it on every page, see
``PiccoloAccountRepository.get``), so the badge costs no query of its own. The actions
are the import and export pages' own routes; this page only links and posts to them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.exceptions import NoRouteMatchFoundException
from litestar.params import FromPath
from litestar.response import Response
from litestar.types import ControllerRouterHandler

from app.accounts.auth import verified_guard
from app.accounts.web import account_of
from app.errors import error_response
from app.jobs_centre.service import InvalidCursor, JobNotFound, JobsCentre
from app.lib.htmx import is_htmx, render

BAD_CURSOR = "That page link is not valid any more, so here are your newest jobs."


def not_found(request: Request, _: Exception) -> Response[Any]:
    # Another user's transfer is "not found" too: existence is not leaked.
    return error_response(request, 404)


def _action_urls(request: Request) -> Any:
    """``action_url(name, transfer_id)`` for templates: None for a route not (yet) built."""

    def action_url(name: str, transfer_id: int) -> str | None:
        try:
            return request.app.route_reverse(name, transfer_id=transfer_id)
        except NoRouteMatchFoundException:
            return None

    return action_url


def _url(request: Request, name: str) -> str | None:
    try:
        return request.app.route_reverse(name)
    except NoRouteMatchFoundException:
        return None


def _common(request: Request) -> dict[str, Any]:
    return {"htmx": is_htmx(request), "action_url": _action_urls(request)}


def badge_context(unseen: int, active: bool, *, poll: bool = True) -> dict[str, Any]:
    return {"jobs_badge": {"unseen": unseen, "poll": active and poll}}


class JobsPages(Controller):
    path = "/jobs"
    guards = [verified_guard]
    include_in_schema = False
    exception_handlers = {JobNotFound: not_found}

    @get("/", name="jobs")
    async def index(self, request: Request) -> Response[str]:
        account = account_of(request)
        centre = JobsCentre()
        cursor = request.query_params.get("cursor") or None
        # Taken before the list is read: a job that finishes after it is still news.
        seen_at = datetime.now(UTC)
        error = None
        try:
            page = await centre.page(account.id, cursor)
        except InvalidCursor:
            error, cursor = BAD_CURSOR, None
            page = await centre.page(account.id)
        if cursor is None and (account.jobs_unseen or account.jobs_seen_at is None):
            # Only when something is news: a plain visit writes nothing.
            await centre.mark_seen(account.id, seen_at)
        base = request.app.route_reverse("jobs")
        older_url = (
            f"{base}?{urlencode({'cursor': page.next_cursor})}" if page.next_cursor else None
        )
        return render(
            request,
            "jobs/index.html",
            {
                **_common(request),
                # The rows here are live: the badge on this page neither counts nor polls.
                **badge_context(0, account.jobs_active, poll=False),
                "page": page,
                "error": error,
                "older_url": older_url,
                "newest_url": base if cursor else None,
                "refresh_url": f"{base}?{urlencode({'cursor': cursor})}" if cursor else base,
                "import_url": _url(request, "import_new") or _url(request, "imports"),
                "customers_url": request.app.route_reverse("customers"),
            },
            block="jobs",
            status_code=400 if error else 200,
        )

    @get("/{transfer_id:int}/row", name="job_row")
    async def row(self, request: Request, transfer_id: FromPath[int]) -> Response[str]:
        account = account_of(request)
        centre = JobsCentre()
        row = await centre.row(account.id, transfer_id)
        if is_htmx(request) and not row.active and row.finished_at is not None:
            # The user watched it finish on /jobs: it is not news for the badge.
            await centre.mark_seen(account.id, row.finished_at)
        return render(
            request,
            "jobs/row.html",
            {
                **_common(request),
                **badge_context(account.jobs_unseen, account.jobs_active),
                "row": row,
                "jobs_url": request.app.route_reverse("jobs"),
            },
            block="row",
        )

    @get("/badge", name="jobs_badge")
    async def badge(self, request: Request) -> Response[str]:
        account = account_of(request)
        context = badge_context(account.jobs_unseen, account.jobs_active)
        if is_htmx(request):
            return render(request, "jobs/_badge.html", context)
        return render(
            request,
            "jobs/badge.html",
            {**context, "jobs_url": request.app.route_reverse("jobs")},
        )


jobs_centre_route_handlers: list[ControllerRouterHandler] = [JobsPages]
