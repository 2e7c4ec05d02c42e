"""Response models shared by several routes (a passage hit, a section of the outline)."""

from __future__ import annotations

from typing import Any

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


FilterValue = str | int | float | bool | list[str | int | float | bool]
FILTER_DESCRIPTION = (
    "only documents whose metadata match, all conditions together: "
    '`{"speaker": "李强"}` (equality; a list means any of), `{"date": "2019"}`, '
    '`{"date_from": "2015", "date_to": "2019-06"}` (inclusive, at the precision written); '
    "`title` is the document's title"
)


def filter_field() -> Any:
    return Field(None, max_length=20, description=FILTER_DESCRIPTION)
