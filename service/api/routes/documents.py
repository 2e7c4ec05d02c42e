"""Documents: add or replace, list, read, read the outline, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from service.api.deps import SpeechesDep
from service.api.schemas import CleanStr, Metadata, SectionOut
from service.store import StoredDocument

router = APIRouter(prefix="/v1/documents", tags=["documents"])

DOC_ID_PATTERN = r"^\w[\w.\-]{0,127}$"


class DocumentIn(BaseModel):
    id: str | None = Field(
        None,
        pattern=DOC_ID_PATTERN,
        description="client-chosen id; default: derived from the text's hash",
    )
    title: CleanStr | None = Field(None, max_length=500)
    text: str = Field(min_length=1)
    metadata: Metadata | None = Field(
        None, description="a JSON object, nested at most 8 deep, at most 64 KiB"
    )


class DocumentOut(BaseModel):
    id: str
    title: str
    text: str
    metadata: dict[str, Any]
    sections: list[SectionOut]
    paragraphs: int
    chars: int
    created_at: str
    updated_at: str


class DocumentRowOut(BaseModel):
    id: str
    title: str
    sections: int
    paragraphs: int
    chars: int
    metadata: dict[str, Any]


class DocumentListOut(BaseModel):
    documents: list[DocumentRowOut]


class SectionsOut(BaseModel):
    sections: list[SectionOut]


def _out(doc: StoredDocument) -> DocumentOut:
    return DocumentOut(
        id=doc.id,
        title=doc.title,
        text=doc.text,
        metadata=doc.metadata,
        sections=[SectionOut.model_validate(s) for s in doc.sections],
        paragraphs=doc.paragraphs,
        chars=len(doc.text),
        created_at=doc.created_at,
        updated_at=doc.updated_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "replaced an existing document of that id"}},
)
def put_document(body: DocumentIn, speeches: SpeechesDep, response: Response) -> DocumentOut:
    result = speeches.put_document(
        body.text, doc_id=body.id, title=body.title, metadata=body.metadata
    )
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return _out(result.document)


@router.get("")
def list_documents(speeches: SpeechesDep) -> DocumentListOut:
    return DocumentListOut.model_validate({"documents": speeches.list_documents()})


@router.get("/{doc_id}")
def get_document(doc_id: str, speeches: SpeechesDep) -> DocumentOut:
    return _out(speeches.get_document(doc_id))


@router.get("/{doc_id}/sections")
def get_sections(doc_id: str, speeches: SpeechesDep) -> SectionsOut:
    return SectionsOut.model_validate({"sections": speeches.sections(doc_id)})


@router.delete("/{doc_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_document(doc_id: str, speeches: SpeechesDep) -> Response:
    speeches.delete_document(doc_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
