"""The chat page: plain HTML, CSS and JavaScript from ``service/static`` (no build, no CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"

router = APIRouter(tags=["page"], include_in_schema=False)


@router.get("/")
@router.get("/chat")
def chat_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")
