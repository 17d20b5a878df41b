"""/jobs, a job's row fragment and the jobs badge, on both profiles, read as a browser
(and a screen reader) would: elements selected from the HTML, no substring soup."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.jobs_centre.conftest import (
    HX,
    add_transfer,
    become,
    fragment_roots,
    html,
    minutes,
    set_transfer,
)


def rows(page):
    return page.select("table.jobs-table tbody tr.job")


def actions(row) -> list[str]:
    cell = row.select_one(".job-actions")
    return [e.get_text(" ", strip=True) for e in cell.select("a, button")]


def badge_text(page) -> str:
    badge = page.select_one("nav #jobs-badge")
    assert badge is not None, "no badge on the Jobs link"
    return badge.get_text(" ", strip=True)


async def test_empty_state_in_words_with_links(client, member):
    response = await client.get("/jobs")
    assert response.status_code == 200
    page = html(response)
    empty = page.select_one(".jobs-empty")
    assert empty is not None
    assert "no imports or exports" in empty.get_text(" ", strip=True)
    links = {a.get_text(" ", strip=True): a["href"] for a in empty.select("a")}
    assert links["your customers"] == "/customers"
    assert any("Import" in text for text in links)
    # Works without JavaScript: a plain Refresh link.
    assert page.select_one("main a[href='/jobs']").get_text(strip=True) == "Refresh"
    current = page.select_one("nav a[aria-current=page]")
    assert current is not None
    assert current.get_text(" ", strip=True).startswith("Jobs")


async def test_both_kinds_newest_first_with_the_actions_each_status_allows(client, member):
    email = member.email
    done_import = add_transfer(
        client,
        email,
        status="completed",
        created_at=minutes(1),
        total_rows=10,
        processed_rows=10,
        created=6,
        updated=2,
        skipped=1,
        failed=1,
        error_report_key="imports/x/errors.csv",
        started_at=minutes(1),
        finished_at=minutes(2),
    )
    failed_export = add_transfer(
        client,
        email,
        kind="export",
        status="failed",
        created_at=minutes(3),
        original_filename="customers-20260501.csv",
        error_message="Storage was unreachable.",
        finished_at=minutes(4),
    )
    running_import = add_transfer(
        client,
        email,
        status="running",
        created_at=minutes(5),
        total_rows=200,
        processed_rows=50,
        started_at=minutes(5),
    )
    done_export = add_transfer(
        client,
        email,
        kind="export",
        status="completed",
        created_at=minutes(6),
        original_filename="customers-all.csv",
        processed_rows=42,
        total_rows=42,
        options={"size_bytes": 2048},
        finished_at=minutes(7),
    )
    undone_import = add_transfer(
        client,
        email,
        status="completed",
        created_at=minutes(0),
        options={"undone_at": "2026-05-01T09:30:00+00:00"},
        finished_at=minutes(1),
    )

    page = html(await client.get("/jobs"))
    found = rows(page)
    assert [r["id"] for r in found] == [
        f"job-{t.id}"
        for t in (done_export, running_import, failed_export, done_import, undone_import)
    ]
    by_id = {r["id"]: r for r in found}

    export_row = by_id[f"job-{done_export.id}"]
    assert export_row.select_one(".job-kind").get_text(strip=True) == "Export"
    assert export_row.select_one(".job-file").get_text(strip=True) == "customers-all.csv"
    assert export_row.select_one(".job-status-label").get_text(strip=True) == "Finished"
    counts = {
        d.select_one("dt").get_text(strip=True): d.select_one("dd").get_text(strip=True)
        for d in export_row.select(".job-count")
    }
    assert counts == {"Rows": "42", "Size": "2.0 KB"}
    assert "Download" in actions(export_row)
    assert export_row.get("hx-trigger") is None

    running = by_id[f"job-{running_import.id}"]
    assert running.select_one(".job-status-label").get_text(strip=True) == "Running"
    progress = running.select_one("progress")
    assert (progress["value"], progress["max"]) == ("50", "200")
    assert actions(running) == ["Cancel"]
    assert running["hx-trigger"] == "every 1s"
    assert running["hx-get"] == f"/jobs/{running_import.id}/row"

    failed = by_id[f"job-{failed_export.id}"]
    assert failed.select_one(".job-status-label").get_text(strip=True) == "Failed"
    assert "Storage was unreachable." in failed.select_one(".job-status").get_text(" ", strip=True)
    assert actions(failed) == ["Try again"]
    form = failed.select_one("form[method=post]")
    assert form["action"] == f"/exports/{failed_export.id}/retry" or form["action"].endswith(
        f"/{failed_export.id}/retry"
    )
    assert form.select_one("input[name=_csrf_token]") is not None

    imported = by_id[f"job-{done_import.id}"]
    counts = {
        d.select_one("dt").get_text(strip=True): d.select_one("dd").get_text(strip=True)
        for d in imported.select(".job-count")
    }
    assert counts == {"Created": "6", "Updated": "2", "Skipped": "1", "Failed": "1"}
    assert actions(imported) == ["Error report", "Undo import"]
    times = imported.select(".job-times time")
    assert [t["datetime"] for t in times] == [minutes(1).isoformat(), minutes(2).isoformat()]

    undone = by_id[f"job-{undone_import.id}"]
    assert undone.select_one(".job-status-label").get_text(strip=True) == "Undone"
    assert actions(undone) == []


async def test_a_running_row_polls_until_it_finishes(client, member):
    transfer = add_transfer(
        client,
        member.email,
        status="running",
        total_rows=100,
        processed_rows=10,
        started_at=minutes(0),
    )
    url = f"/jobs/{transfer.id}/row"
    response = await client.get(url, headers=HX)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["vary"]
    (root,) = fragment_roots(response)
    assert root.name == "tr"
    assert root["id"] == f"job-{transfer.id}"
    assert root["hx-trigger"] == "every 1s"
    assert root.select_one("progress")["value"] == "10"

    set_transfer(client, member.email, transfer.id, processed_rows=60)
    (root,) = fragment_roots(await client.get(url, headers=HX))
    assert root.select_one("progress")["value"] == "60"
    assert root.get("hx-trigger") == "every 1s"

    set_transfer(
        client,
        member.email,
        transfer.id,
        status="completed",
        processed_rows=100,
        created=100,
        finished_at=datetime.now(UTC),
    )
    (root,) = fragment_roots(await client.get(url, headers=HX))
    assert root.get("hx-trigger") is None  # polling stops
    assert root.get("hx-get") is None
    assert root.select_one(".job-status-label").get_text(strip=True) == "Finished"
    assert "Undo import" in actions(root)

    # Without htmx the same URL is a page of its own.
    page = html(await client.get(url))
    assert page.select_one("h1").get_text(" ", strip=True) == "Import of people.csv"
    assert page.select_one(f"tr#job-{transfer.id}") is not None


async def test_the_list_is_a_fragment_for_htmx_and_pages_older_by_keyset(client, member):
    made = [
        add_transfer(client, member.email, status="completed", created_at=minutes(n))
        for n in range(27)
    ]
    page = html(await client.get("/jobs"))
    first = [r["id"] for r in rows(page)]
    assert len(first) == 25
    older = page.select_one("nav.pager a[rel=next]")
    assert older is not None
    assert older.get_text(strip=True) == "Older"
    response = await client.get(older["href"], headers=HX)
    roots = fragment_roots(response)
    assert [r["id"] for r in roots] == ["jobs"]
    second = [r["id"] for r in roots[0].select("tr.job")]
    assert second == [f"job-{made[1].id}", f"job-{made[0].id}"]
    assert not set(first) & set(second)
    assert roots[0].select_one("nav.pager a[rel=next]") is None

    response = await client.get("/jobs?cursor=not-a-cursor")
    assert response.status_code == 400
    page = html(response)
    assert "not valid any more" in page.select_one("#jobs [role=alert]").get_text()
    assert len(rows(page)) == 25


async def test_badge_counts_finished_jobs_until_jobs_is_visited(client, member):
    page = html(await client.get("/customers"))
    assert badge_text(page) == ""
    assert page.select_one("nav #jobs-badge").get("hx-trigger") is None  # nothing to poll

    for _n in range(3):
        add_transfer(client, member.email, status="completed", finished_at=datetime.now(UTC))
    add_transfer(client, member.email, kind="export", status="running")
    page = html(await client.get("/customers"))
    badge = page.select_one("nav #jobs-badge")
    assert badge.select_one(".visually-hidden").get_text(strip=True) == (
        "(3 finished jobs you have not seen)"
    )
    assert badge.select_one("[aria-hidden=true]").get_text(strip=True) == "3"
    # A job is running: the badge polls its fragment every 10 s.
    assert badge["hx-get"] == "/jobs/badge"
    assert badge["hx-trigger"] == "every 10s"
    response = await client.get("/jobs/badge", headers=HX)
    (root,) = fragment_roots(response)
    assert root["id"] == "jobs-badge"
    assert root.select_one("[aria-hidden=true]").get_text(strip=True) == "3"

    # Looking at /jobs marks them seen: that page and the next show no count.
    page = html(await client.get("/jobs"))
    assert badge_text(page) == ""
    page = html(await client.get("/customers"))
    assert badge_text(page) == ""
    (root,) = fragment_roots(await client.get("/jobs/badge", headers=HX))
    assert root.get_text(strip=True) == ""
    assert root["hx-trigger"] == "every 10s"  # still polling: the export runs

    add_transfer(
        client, member.email, kind="export", status="failed", finished_at=datetime.now(UTC)
    )
    (root,) = fragment_roots(await client.get("/jobs/badge", headers=HX))
    assert root.select_one(".visually-hidden").get_text(strip=True) == (
        "(1 finished job you have not seen)"
    )
    # Without htmx the badge's URL is a page saying the same.
    page = html(await client.get("/jobs/badge"))
    assert "1 finished job you have not seen" in page.select_one("main").get_text(" ", strip=True)


async def test_another_persons_job_is_not_found(client, mailbox, member):
    theirs = add_transfer(client, member.email, status="running")
    await become(client, mailbox, "Other Person")
    assert (await client.get(f"/jobs/{theirs.id}/row")).status_code == 404
    assert (await client.get(f"/jobs/{theirs.id}/row", headers=HX)).status_code == 404
    page = html(await client.get("/jobs"))
    assert rows(page) == []
    assert (await client.get("/jobs/999999999/row")).status_code == 404


async def test_signed_out_people_are_sent_to_sign_in(client):
    response = await client.get("/jobs", follow_redirects=False)
    assert response.status_code in (302, 303, 401)
