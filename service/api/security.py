"""Who may call the API: API keys (full or read-only), checked before any route runs.

Keys come from ``Settings.api_keys`` and ``Settings.read_only_api_keys``: each entry is the key
itself or ``sha256:<64 hex digits>``, the SHA-256 of the key, so a configuration file or an
environment need not hold the key. Only digests are kept in memory; a presented key is hashed
and compared with every configured digest in constant time.

With any key configured, every request needs ``Authorization: Bearer <key>`` (401 otherwise, with
``WWW-Authenticate: Bearer``) except ``PUBLIC_PATHS``: the liveness probe, and the chat page's
HTML, CSS and JavaScript and the OpenAPI description, which hold no speech (the page asks for a
key when the API answers 401). A read-only key may read, search, ask, summarise and chat; any
other write (ingest, upload, delete, batch jobs) answers 403. Writes are told by method: every
POST, PUT, PATCH and DELETE is a write but those in ``READ_POSTS``, so a new route is guarded by
default.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import re
from typing import Literal

from starlette.types import ASGIApp, Receive, Scope, Send

from service.config import Settings

log = logging.getLogger("speechqa.security")

Access = Literal["write", "read"]

PUBLIC_PATHS = frozenset(
    {"/healthz", "/", "/chat", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
PUBLIC_PREFIXES = ("/static/",)
READ_POSTS = frozenset({"/v1/search", "/v1/ask", "/v1/summarize", "/v1/chat/completions"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_HASHED = re.compile(r"^sha256:([0-9a-fA-F]{64})$")


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def hash_key(key: str) -> str:
    """The ``sha256:<hex>`` form of a key, for configuration (``speechqa hash-key``)."""
    return "sha256:" + key_digest(key).hex()


def _digest(entry: str) -> bytes:
    m = _HASHED.match(entry)
    if m:
        return bytes.fromhex(m.group(1))
    if entry.lower().startswith("sha256:"):
        raise ValueError("an API key given as sha256:<hex> needs exactly 64 hex digits")
    return key_digest(entry)


class KeyRing:
    """The configured keys as SHA-256 digests, each with the access it grants."""

    def __init__(self, full: list[str], read_only: list[str]) -> None:
        self._keys: list[tuple[bytes, Access]] = [(_digest(k), "write") for k in full]
        self._keys += [(_digest(k), "read") for k in read_only]

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        return cls(settings.api_keys, settings.read_only_api_keys)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def access(self, token: str) -> Access | None:
        """What ``token`` may do; every digest is compared, so timing tells nothing."""
        presented = key_digest(token)
        found: Access | None = None
        for digest, level in self._keys:
            if hmac.compare_digest(digest, presented) and found != "write":
                found = level
        return found


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def is_write(method: str, path: str) -> bool:
    return method.upper() in WRITE_METHODS and path.rstrip("/") not in READ_POSTS


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


async def send_error(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class AuthMiddleware:
    """401 without a valid key, 403 for a read-only key on a write; nothing without keys."""

    def __init__(self, app: ASGIApp, keys: KeyRing) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys.enabled or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if is_public(path):
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope["headers"])
        access = None if token is None else self.keys.access(token)
        if access is None:
            await send_error(
                send,
                401,
                "unauthorized",
                "a valid API key is required: send 'Authorization: Bearer <key>'",
                {"WWW-Authenticate": 'Bearer realm="speechqa"'},
            )
            return
        scope.setdefault("state", {})["access"] = access
        if access == "read" and is_write(scope["method"], path):
            await send_error(
                send,
                403,
                "forbidden",
                "this API key is read-only: it cannot add, change or delete documents or start "
                "batch jobs",
            )
            return
        await self.app(scope, receive, send)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ExposureError(RuntimeError):
    """Serving a non-loopback address without API keys, not explicitly allowed."""


def check_exposure(settings: Settings, host: str | None = None) -> None:
    """Warn when the API is open; refuse an open API on a non-loopback address unless allowed."""
    host = settings.host if host is None else host
    if settings.api_keys or settings.read_only_api_keys:
        return
    if is_loopback(host):
        log.warning(
            "no API keys configured (SPEECHQA_API_KEYS): anyone who can connect to %s can read, "
            "change and delete every speech; serving on loopback only",
            host,
        )
        return
    if not settings.allow_unauthenticated:
        raise ExposureError(
            f"refusing to serve on {host} without API keys: set SPEECHQA_API_KEYS (and "
            "optionally SPEECHQA_READ_ONLY_API_KEYS), or set SPEECHQA_ALLOW_UNAUTHENTICATED=true "
            "to serve an open API on purpose"
        )
    log.warning(
        "!!! NO API KEYS and listening on %s (SPEECHQA_ALLOW_UNAUTHENTICATED=true): anyone on "
        "the network can read, change and delete every speech !!!",
        host,
    )
