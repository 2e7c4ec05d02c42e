"""The FastAPI application: lifespan opens the collection once and puts it on ``app.state``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.api.errors import install_error_handlers
from service.api.routes import ask, documents, health, info, search, summarize
from service.config import Settings, get_settings
from service.core import VERSION, Speeches

log = logging.getLogger("speechqa")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        speeches = Speeches(settings).open()
        app.state.speeches = speeches
        if settings.seed_dir is not None:
            reports = speeches.ingest_paths([settings.seed_dir], recursive=False)
            counts: dict[str, int] = {}
            for r in reports:
                counts[r.status] = counts.get(r.status, 0) + 1
                if r.error:
                    log.warning("seed %s not loaded: %s", r.path, r.error)
            log.info("seeds from %s: %s", settings.seed_dir, counts or "none found")
        info = speeches.info()
        log.info(
            "loaded %d documents, %d passages from %s; encoder %s (dim %d)",
            info["documents"],
            info["passages"],
            settings.data_dir,
            info["embedder"]["name"],
            info["embedder"]["dim"],
        )
        try:
            yield
        finally:
            speeches.close()

    app = FastAPI(
        title="speechqa",
        version=VERSION,
        description="Grounded answers and extractive section summaries over Chinese speeches.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (health, info, documents, search, ask, summarize):
        app.include_router(module.router)
    return app
