"""The FastAPI application: lifespan opens the collection once and puts it on ``app.state``."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from service.api.errors import install_error_handlers
from service.api.inline import Inflight
from service.api.metrics import Metrics
from service.api.middleware import BodyLimitMiddleware, RequestLogMiddleware
from service.api.routes import ask, chat, documents, health, info, page, search, summarize
from service.api.routes import batch as batch_routes
from service.api.routes import jobs as job_routes
from service.api.routes import metrics as metrics_routes
from service.api.routes import upload as upload_routes
from service.api.security import AuthMiddleware, KeyRing, check_exposure
from service.config import Settings, get_settings
from service.core import VERSION, Speeches
from service.jobs import Jobs

log = logging.getLogger("speechqa")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    keys = KeyRing.from_settings(settings)  # a malformed sha256: entry fails here, at once

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not keys.enabled:
            check_exposure(settings)
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
        # What start-up built lives as long as the process: out of the collector's sight, a
        # full collection no longer walks it (~60 ms for the corpus bench's data dir, paid by
        # whichever request triggers it, down to ~0.04 ms).
        gc.freeze()
        # Batch jobs run in one worker thread; jobs a stopped process left running resume.
        app.state.jobs = Jobs(speeches).start()
        try:
            yield
        finally:
            app.state.jobs.stop()
            speeches.close()
            gc.unfreeze()  # a process that serves again (tests) gets its garbage collected

    app = FastAPI(
        title="speechqa",
        version=VERSION,
        description="Grounded answers and extractive section summaries over Chinese speeches.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (health, info, documents, search, ask, summarize, chat, page, metrics_routes):
        app.include_router(module.router)
    for module in (upload_routes, batch_routes, job_routes):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=page.STATIC_DIR), name="static")
    app.state.metrics = Metrics()
    app.state.inflight = Inflight()
    if keys.enabled:
        _document_bearer_auth(app)
    # Outermost last: request id, log and metrics see every answer, CORS headers go on 401s
    # too, and the key is checked before a byte of the body is read.
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_request_bytes,
        upload_limit=settings.max_upload_bytes,
        upload_paths={"/v1/documents/upload"},
    )
    app.add_middleware(AuthMiddleware, keys=keys)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Location"],
            max_age=600,
        )
    app.add_middleware(
        RequestLogMiddleware,
        metrics=app.state.metrics,
        fastapi_app=app,
        inflight=app.state.inflight,
    )
    return app


def _document_bearer_auth(app: FastAPI) -> None:
    """Declare the bearer key in the OpenAPI description, so /docs offers "Authorize"."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        if "apiKey" not in schemes:
            schemes["apiKey"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "an API key (SPEECHQA_API_KEYS or SPEECHQA_READ_ONLY_API_KEYS)",
            }
            schema["security"] = [{"apiKey": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
