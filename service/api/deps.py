"""Typed dependencies for what the lifespan put on ``app.state``.

Access (API keys) is checked by ``service.api.security.AuthMiddleware`` before any route runs.

The dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the
thread pool, one more hop between threads per request for an attribute lookup that never blocks.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.core import Speeches


async def get_speeches(request: Request) -> Speeches:
    return request.app.state.speeches


SpeechesDep = Annotated[Speeches, Depends(get_speeches)]
