"""Extractive summaries of a document's sections, or of a few documents chosen by id or metadata."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from service.api.deps import SpeechesDep
from service.api.schemas import FilterValue, SummaryBudget, filter_field, model_response
from service.errors import InvalidInput

router = APIRouter(tags=["summarize"])

# More documents than this are a batch job (POST /v1/batch/summaries), not one request.
MAX_SYNC_DOCUMENTS = 20


class TooManyDocuments(InvalidInput):
    code = "too_many_documents"


class SummarizeIn(SummaryBudget):
    doc_id: str | None = Field(None, min_length=1, max_length=128)
    section_id: str | None = Field(None, min_length=1, max_length=64)
    doc_ids: list[str] | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description=f"instead of doc_id: up to {MAX_SYNC_DOCUMENTS} documents (with filter)",
    )
    filter: dict[str, FilterValue] | None = filter_field()


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
    level: int = 1
    marker: str | None = None


class DocumentSummaryOut(BaseModel):
    doc_id: str
    title: str
    sections: list[SectionSummaryOut]


class SummarizeOut(BaseModel):
    doc_id: str | None = Field(description="the document summarised; null for a selection")
    sections: list[SectionSummaryOut]
    documents: list[DocumentSummaryOut] | None = Field(
        None, description="with doc_ids / filter: each chosen document's summaries"
    )


@router.post("/v1/summarize", response_model=SummarizeOut)
def summarize(body: SummarizeIn, speeches: SpeechesDep) -> Response:
    budget = {
        "max_sentences": body.max_sentences,
        "max_chars": body.max_chars,
        "ratio": body.ratio,
        "include_subsections": body.include_subsections,
    }
    selection = body.doc_ids is not None or body.filter is not None
    if body.doc_id is not None:
        if selection:
            raise InvalidInput("give doc_id, or doc_ids / filter, not both")
        sections = speeches.summarize(body.doc_id, body.section_id, **budget)
        return model_response(
            SummarizeOut(
                doc_id=body.doc_id,
                sections=[
                    SectionSummaryOut.model_validate(s, from_attributes=True) for s in sections
                ],
            )
        )
    if not selection:
        raise InvalidInput("doc_id is required (or doc_ids / filter to choose several documents)")
    if body.section_id is not None:
        raise InvalidInput("section_id needs a doc_id")
    ids = speeches.select_documents(body.doc_ids, body.filter)
    if len(ids) > MAX_SYNC_DOCUMENTS:
        raise TooManyDocuments(
            f"{len(ids)} documents match; one request summarises up to {MAX_SYNC_DOCUMENTS}: "
            "use POST /v1/batch/summaries for more"
        )
    documents = []
    for doc_id in ids:
        sections = speeches.summarize(doc_id, **budget)
        documents.append(
            DocumentSummaryOut(
                doc_id=doc_id,
                title=speeches.get_document(doc_id).title,
                sections=[
                    SectionSummaryOut.model_validate(s, from_attributes=True) for s in sections
                ],
            )
        )
    return model_response(SummarizeOut(doc_id=None, sections=[], documents=documents))
