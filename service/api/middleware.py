"""ASGI middleware: request body limits, request ids, one access log line and metrics per request.

Pure ASGI (no ``BaseHTTPMiddleware``), so streamed responses stream and streamed request bodies
are counted as they arrive.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.inline import Inflight
from service.api.metrics import Metrics
from service.api.security import send_error

access_log = logging.getLogger("speechqa.access")

_REQUEST_ID = re.compile(r"^[\w.\-:]{1,128}$")


class BodyTooLarge(HTTPException):
    """Raised by the receive channel once a body passes its limit; the handler answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit} bytes")


class BodyLimitMiddleware:
    """413 for a body over the limit: at once from Content-Length, or as the bytes arrive."""

    def __init__(self, app: ASGIApp, limit: int, upload_limit: int, upload_paths: set[str]):
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"] in self.upload_paths else self.limit
        for name, value in scope["headers"]:
            if name.lower() == b"content-length":
                if not value.isdigit():
                    await send_error(send, 400, "bad_request", "Content-Length is not a number")
                    return
                if int(value) > limit:
                    await send_error(
                        send,
                        413,
                        "payload_too_large",
                        f"the request body has {int(value)} bytes; the limit is {limit}",
                        {"Connection": "close"},
                    )
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await send_error(send, 413, "payload_too_large", str(exc.detail))


class RouteLabels:
    """The route's path template (``/v1/documents/{doc_id}``) for a request, so that metric
    labels stay few: from the matched route, or for a request answered before routing (401,
    413) from the templates of the OpenAPI description; ``unmatched`` for any other path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    def _compile(self) -> list[tuple[re.Pattern[str], str]]:
        if self._templates is None:
            templates = [*self.app.openapi().get("paths", {}), "/", "/chat"]
            self._templates = [
                (
                    re.compile("^" + "[^/]+".join(map(re.escape, re.split(r"\{[^}]+\}", t))) + "$"),
                    t,
                )
                for t in templates
            ]
        return self._templates

    def __call__(self, scope: Scope) -> str:
        path = getattr(scope.get("route"), "path", None)
        if isinstance(path, str):
            return path
        if scope["path"].startswith("/static/"):
            return "/static"
        for pattern, template in self._compile():
            if pattern.match(scope["path"]):
                return template
        return "unmatched"


class RequestLogMiddleware:
    """Request id (``X-Request-ID``, kept if the client sent a sane one), access line, metrics,
    and the count of requests in the server (see ``service.api.inline``)."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, fastapi_app: Any, inflight: Inflight
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.labels = RouteLabels(fastapi_app)
        self.inflight = inflight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name.lower() == b"x-request-id":
                candidate = value.decode("latin-1")
                if _REQUEST_ID.match(candidate):
                    request_id = candidate
        request_id = request_id or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        self.inflight.count += 1
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.inflight.count -= 1
            duration = time.perf_counter() - started
            route = self.labels(scope)
            self.metrics.observe(scope["method"], route, status, duration)
            # Gather the line's fields only when it is written.
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d %.1f ms",
                    scope["method"],
                    scope["path"],
                    status,
                    duration * 1000,
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(duration * 1000, 2),
                        "request_id": request_id,
                        "client": (scope.get("client") or ("", 0))[0],
                    },
                )
