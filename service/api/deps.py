"""Typed dependencies for what the lifespan put on ``app.state``."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from service.core import Speeches
from service.errors import Unauthorized


def get_speeches(request: Request) -> Speeches:
    return request.app.state.speeches


SpeechesDep = Annotated[Speeches, Depends(get_speeches)]


def require_api_key(request: Request) -> None:
    """``Authorization: Bearer <key>`` with one of ``Settings.api_keys``; none configured = open."""
    keys = get_speeches(request).settings.api_keys
    if not keys:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip().encode("utf-8", "replace")
    if scheme.lower() != "bearer" or not any(
        hmac.compare_digest(token, key.encode("utf-8")) for key in keys
    ):
        raise Unauthorized("a valid API key is required: send 'Authorization: Bearer <key>'")
