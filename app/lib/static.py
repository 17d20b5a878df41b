"""Static files under content-hashed URLs, cached for a year.

``static_url("app.css")`` gives ``/static/app.css?v=<hash>``: a changed file gets a new
URL, so browsers may keep every version forever.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from litestar.datastructures import CacheControlHeader
from litestar.router import Router
from litestar.static_files import create_static_files_router

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"


class StaticAssets:
    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.directory = directory
        self._hashes: dict[str, str] = {}

    def hash_of(self, path: str) -> str:
        if path not in self._hashes:
            file = (self.directory / path).resolve()
            if not file.is_relative_to(self.directory) or not file.is_file():
                raise FileNotFoundError(f"no static file {path!r}")
            self._hashes[path] = hashlib.sha256(file.read_bytes()).hexdigest()[:12]
        return self._hashes[path]

    def url(self, path: str) -> str:
        return f"/static/{path}?v={self.hash_of(path)}"

    def router(self) -> Router:
        return create_static_files_router(
            path="/static",
            directories=[self.directory],
            cache_control=CacheControlHeader(max_age=31_536_000, public=True),
            name="static",
        )
