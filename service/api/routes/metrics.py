"""Prometheus metrics (text exposition format); guarded by the API keys like the rest."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from service.api.deps import SpeechesDep
from service.api.metrics import CONTENT_TYPE, Metrics

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request, speeches: SpeechesDep) -> PlainTextResponse:
    registry: Metrics = request.app.state.metrics
    text = registry.render(
        {
            "speechqa_documents": ("Documents stored.", speeches.store.count_documents()),
            "speechqa_passages": ("Passages indexed.", speeches.store.count_passages()),
        }
    )
    return PlainTextResponse(text, media_type=CONTENT_TYPE)
