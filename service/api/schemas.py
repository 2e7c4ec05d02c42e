"""Response models shared by several routes (a passage hit, a section of the outline)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HitOut(BaseModel):
    doc_id: str
    section_id: str
    section_title: str
    paragraph: int = Field(description="1-based line of the source text")
    text: str
    score: float
    start: int = Field(description="character offset into the document's text")
    end: int


class SectionOut(BaseModel):
    id: str
    number: int | None
    marker: str | None
    title: str
    level: int
    kind: str
    start: int
    end: int
    paragraphs: tuple[int, int]
    children: list[SectionOut] = []
