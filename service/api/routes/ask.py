"""Grounded question answering: the shortest span that answers, or a refusal."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from service.api.deps import SpeechesDep
from service.api.inline import run_blocking
from service.api.schemas import CleanStr, FilterValue, HitOut, filter_field, model_response
from service.core import Speeches

router = APIRouter(tags=["ask"])


class AskIn(BaseModel):
    question: CleanStr = Field(min_length=1, max_length=2000)
    top_k: int = Field(5, ge=1, le=50)
    doc_ids: list[str] | None = Field(None, max_length=1000)
    filter: dict[str, FilterValue] | None = filter_field()


class LocationOut(BaseModel):
    doc_id: str
    text: str
    paragraph: int
    start: int
    end: int


class AskOut(BaseModel):
    answer: str = Field(description='a span copied from a speech, or "" when not answerable')
    answerable: bool
    confidence: float
    citations: list[HitOut] = Field(description="supporting passages, the answer's first")
    location: LocationOut | None = Field(None, description="where the answer span stands")
    sentence: LocationOut | None = Field(None, description="the sentence holding the answer")


@router.post("/v1/ask", response_model=AskOut)
async def ask(body: AskIn, speeches: SpeechesDep, request: Request) -> Response:
    return await run_blocking(request, _ask, body, speeches)


def _ask(body: AskIn, speeches: Speeches) -> Response:
    result = speeches.ask(body.question, body.top_k, body.doc_ids, filter=body.filter)
    answer = AskOut(
        answer=result.answer,
        answerable=result.answerable,
        confidence=result.confidence,
        citations=[HitOut.model_validate(h.as_dict()) for h in result.citations],
        location=LocationOut.model_validate(result.located, from_attributes=True)
        if result.located
        else None,
        sentence=LocationOut.model_validate(result.sentence, from_attributes=True)
        if result.sentence
        else None,
    )
    return model_response(answer)
