"""The FastAPI application: lifespan opens the collection once and puts it on ``app.state``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from service.api.errors import install_error_handlers
from service.api.routes import ask, chat, documents, health, info, page, search, summarize
from service.api.routes import batch as batch_routes
from service.api.routes import jobs as job_routes
from service.api.routes import upload as upload_routes
from service.config import Settings, get_settings
from service.core import VERSION, Speeches
from service.jobs import Jobs

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
        # Batch jobs run in one worker thread; jobs a stopped process left running resume.
        app.state.jobs = Jobs(speeches).start()
        try:
            yield
        finally:
            app.state.jobs.stop()
            speeches.close()

    app = FastAPI(
        title="speechqa",
        version=VERSION,
        description="Grounded answers and extractive section summaries over Chinese speeches.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (health, info, documents, search, ask, summarize, chat, page):
        app.include_router(module.router)
    for module in (upload_routes, batch_routes, job_routes):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=page.STATIC_DIR), name="static")
    return app
