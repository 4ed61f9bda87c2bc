"""What every fake knowledge-base platform on 127.0.0.1 shares: recorded calls, 401s and 429s on demand."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Call:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict
    authorization: str
    status: int = 200
    at: float = field(default_factory=time.monotonic)


class FakePlatform:
    """An aiohttp server whose subclasses add a platform's routes; it checks credentials on every request,
    answers 429 with Retry-After where a test asks, and records every call."""

    # Items per page, far below the platforms' own limits, so that every listing takes several pages.
    page_limit = 2

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.busy: dict[str, list[str]] = {}  # path -> Retry-After values answered with 429, one per request
        self.reject_credentials = False
        self.failing: dict[str, int] = {}  # path -> HTTP status answered instead
        self.url = ""

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def authorized(self, request: web.Request) -> bool:
        raise NotImplementedError

    def error(self, status: int, message: str) -> web.Response:
        return web.json_response({"error": message}, status=status)

    def calls_to(self, path: str) -> list[Call]:
        return [call for call in self.calls if call.path == path]

    @web.middleware
    async def _gate(self, request: web.Request, handler):
        call = Call(
            request.method, request.path, dict(request.query), request.headers.get("Authorization", "")
        )
        self.calls.append(call)
        if self.reject_credentials or not self.authorized(request):
            call.status = 401
            return self.error(401, "Couldn't authenticate you")
        if self.busy.get(request.path):
            call.status = 429
            return web.json_response(
                {"error": "rate limited"}, status=429, headers={"Retry-After": self.busy[request.path].pop(0)}
            )
        if request.path in self.failing:
            call.status = self.failing[request.path]
            return self.error(call.status, "failure")
        return await handler(request)

    async def __aenter__(self):
        app = web.Application(middlewares=[self._gate])
        self.add_routes(app)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        self.url = str(self._server.make_url("")).rstrip("/")
        return self

    async def __aexit__(self, *exc) -> None:
        await self._server.close()


def paged(items: list, offset: int, limit: int) -> tuple[list, int | None]:
    """A page of items from an offset, and the offset of the next page (None after the last)."""
    end = offset + limit
    return items[offset:end], (end if end < len(items) else None)
