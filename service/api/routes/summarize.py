"""Extractive summaries of a document's sections."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.api.deps import SpeechesDep

router = APIRouter(tags=["summarize"])


class SummarizeIn(BaseModel):
    doc_id: str = Field(min_length=1, max_length=128)
    section_id: str | None = Field(None, min_length=1, max_length=64)
    max_sentences: int | None = Field(None, ge=1, le=200)
    max_chars: int | None = Field(None, ge=1, le=1_000_000)
    ratio: float | None = Field(None, gt=0.0, le=1.0)


class SentenceOut(BaseModel):
    text: str
    paragraph: int
    start: int
    end: int
    trimmed: bool = Field(description="cut to its leading clauses to fit the budget")


class SectionSummaryOut(BaseModel):
    section_id: str
    title: str
    summary: str
    sentences: list[SentenceOut]


class SummarizeOut(BaseModel):
    doc_id: str
    sections: list[SectionSummaryOut]


@router.post("/v1/summarize")
def summarize(body: SummarizeIn, speeches: SpeechesDep) -> SummarizeOut:
    sections = speeches.summarize(
        body.doc_id,
        body.section_id,
        max_sentences=body.max_sentences,
        max_chars=body.max_chars,
        ratio=body.ratio,
    )
    return SummarizeOut(
        doc_id=body.doc_id,
        sections=[SectionSummaryOut.model_validate(s, from_attributes=True) for s in sections],
    )
