"""The shell every page shares: home, health, readiness, errors, headers, static files."""

import hashlib
import re
from pathlib import Path

from bs4 import BeautifulSoup
from litestar import get

ROOT = Path(__file__).resolve().parents[1]


def html(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


async def test_home_page_says_what_the_app_is(client):
    response = await client.get("/")
    assert response.status_code == 200
    page = html(response)
    assert "private book" in page.h1.get_text()
    assert page.find("main", id="main") is not None
    assert page.find(attrs={"aria-live": "polite"}) is not None
    scripts = [tag["src"] for tag in page.find_all("script")]
    assert any(re.fullmatch(r"/static/vendor/htmx\.min\.js\?v=[0-9a-f]{12}", s) for s in scripts)
    assert all(tag.has_attr("defer") for tag in page.find_all("script"))
    assert "HX-Request" in response.headers["vary"]


async def test_every_response_carries_security_headers_and_a_request_id(client):
    for path in ("/", "/healthz", "/no-such-page", "/static/app.css"):
        response = await client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp, path
        assert "frame-ancestors 'none'" in csp, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["x-frame-options"] == "DENY", path
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"]), path


async def test_a_proxy_request_id_is_kept(client):
    response = await client.get("/healthz", headers={"X-Request-ID": "lb-1234abcd"})
    assert response.headers["x-request-id"] == "lb-1234abcd"
    response = await client.get("/healthz", headers={"X-Request-ID": "<script>"})
    assert response.headers["x-request-id"] != "<script>"


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_what_is_configured(client, settings):
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    expected = {"database", "storage", "jobs"} | ({"redis"} if settings.uses_redis else set())
    assert set(body["checks"]) == expected
    assert all(value == "ok" for value in body["checks"].values())


async def test_readyz_names_what_is_down(embedded, tmp_path):
    from litestar.testing import AsyncTestClient

    from app.main import create_app

    app = create_app(embedded)
    async with AsyncTestClient(app=app) as client:
        # The storage folder vanishes and a plain file takes its place.
        storage = Path(embedded.storage_dir)
        for child in storage.rglob("*"):
            if child.is_file():
                child.unlink()
        for child in sorted(storage.rglob("*"), reverse=True):
            child.rmdir()
        storage.rmdir()
        storage.write_text("not a folder")
        response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["down"] == ["storage"]
    assert body["checks"]["database"] == "ok"


async def test_not_found_page_shows_the_request_id_and_no_traceback(client):
    response = await client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    page = html(response)
    assert page.find("code", class_="request-id").get_text() == response.headers["x-request-id"]
    assert "Traceback" not in response.text


async def test_api_errors_are_json(client):
    response = await client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["status"] == 404


async def test_server_error_page_is_calm_and_logged(embedded, caplog):
    from litestar.testing import AsyncTestClient

    from app.main import create_app

    @get("/explode", sync_to_thread=False)
    def explode() -> str:
        raise RuntimeError("secret internals")

    app = create_app(embedded)
    app.register(explode)
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/explode", headers={"Accept": "text/html"})
    assert response.status_code == 500
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    request_id = response.headers["x-request-id"]
    assert html(response).find("code", class_="request-id").get_text() == request_id
    logged = [r for r in caplog.records if r.name == "crm.errors"]
    assert logged
    assert logged[0].fields["request_id"] == request_id


async def test_static_files_have_long_cache_lifetimes(client):
    page = html(await client.get("/"))
    css = next(tag["href"] for tag in page.find_all("link", rel="stylesheet"))
    response = await client.get(css)
    assert response.status_code == 200
    assert "max-age=31536000" in response.headers["cache-control"]
    assert response.headers["content-type"].startswith("text/css")


async def test_responses_are_compressed(client):
    response = await client.get("/static/vendor/htmx.min.js", headers={"Accept-Encoding": "gzip"})
    assert response.headers.get("content-encoding") == "gzip"
    # httpx decodes transparently; the body is the real file.
    assert response.content == (ROOT / "static/vendor/htmx.min.js").read_bytes()
    page = await client.get("/", headers={"Accept-Encoding": "gzip"})
    assert page.headers.get("content-encoding") == "gzip"
    assert "Accept-Encoding" in page.headers["vary"]
    assert "</html>" in page.text


def test_vendored_htmx_matches_its_recorded_version_and_hash():
    table = (ROOT / "static/vendor/VERSIONS.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| htmx.min.js"))
    version, digest = (cell.strip() for cell in row.strip("|").split("|")[2:4])
    content = (ROOT / "static/vendor/htmx.min.js").read_bytes()
    assert hashlib.sha256(content).hexdigest() == digest
    assert version.startswith("2.0.")
    assert f'version:"{version}"'.encode() in content
