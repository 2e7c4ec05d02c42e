"""Typed dependencies for what the lifespan put on ``app.state``.

Access (API keys) is checked by ``service.api.security.AuthMiddleware`` before any route runs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.core import Speeches


def get_speeches(request: Request) -> Speeches:
    return request.app.state.speeches


SpeechesDep = Annotated[Speeches, Depends(get_speeches)]
