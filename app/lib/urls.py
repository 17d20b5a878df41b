"""Fast ``url_for`` for templates.

Litestar's ``route_reverse`` costs about 40 µs a call here, and a list page builds a
hundred links. The path of a route with only string parameters is computed once per
route with markers in place of the values; later calls only substitute (percent-encoded)
values. Routes with typed parameters fall back to ``route_reverse``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Litestar
from litestar.exceptions import NoRouteMatchFoundException


class UrlBuilder:
    def __init__(self, app: Litestar) -> None:
        self.app = app
        self._patterns: dict[tuple[str, tuple[str, ...]], str | None] = {}

    def __call__(self, route_name: str, **params: Any) -> str:
        key = (route_name, tuple(sorted(params)))
        pattern = self._patterns.get(key, "")
        if pattern == "":
            pattern = self._pattern(route_name, key[1])
            self._patterns[key] = pattern
        if pattern is None or not all(isinstance(v, str) for v in params.values()):
            return self.app.route_reverse(route_name, **params)
        for name, value in params.items():
            pattern = pattern.replace(f"\x00{name}\x00", quote(value, safe="-._~@"))
        return pattern

    def _pattern(self, route_name: str, names: tuple[str, ...]) -> str | None:
        try:
            return self.app.route_reverse(route_name, **{n: f"\x00{n}\x00" for n in names})
        except (NoRouteMatchFoundException, TypeError, ValueError):
            return None
