"""Passage search: BM25 and dense retrieval fused."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from service.api.deps import SpeechesDep
from service.api.inline import run_blocking
from service.api.schemas import CleanStr, FilterValue, HitOut, filter_field, model_response
from service.core import Speeches

router = APIRouter(tags=["search"])


class SearchIn(BaseModel):
    query: CleanStr = Field(min_length=1, max_length=2000)
    top_k: int = Field(5, ge=1, le=50)
    doc_ids: list[str] | None = Field(None, max_length=1000)
    filter: dict[str, FilterValue] | None = filter_field()


class SearchOut(BaseModel):
    hits: list[HitOut]


@router.post("/v1/search", response_model=SearchOut)
async def search(body: SearchIn, speeches: SpeechesDep, request: Request) -> Response:
    return await run_blocking(request, _search, body, speeches)


def _search(body: SearchIn, speeches: Speeches) -> Response:
    hits = speeches.search(body.query, body.top_k, body.doc_ids, filter=body.filter)
    return model_response(SearchOut(hits=[HitOut.model_validate(h.as_dict()) for h in hits]))
