"""Response models shared by several routes (a passage hit, a section of the outline)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field
from starlette.responses import Response


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    """``model`` as JSON, serialised once by pydantic's Rust serialiser in the calling thread.

    For a sync route declared with ``response_model=``: returning a model instead makes FastAPI
    validate it again and hop to the thread pool a second time to do so, then back to the event
    loop to serialise it. The bytes and the OpenAPI description are the same either way.
    """
    return Response(model.model_dump_json(), status_code, media_type="application/json")


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


class SummaryBudget(BaseModel):
    """How much of each section a summary request keeps, and which sections it covers."""

    include_subsections: bool = Field(
        False, description="summarise every section at every level, not only the top level"
    )
    max_sentences: int | None = Field(None, ge=1, le=200)
    max_chars: int | None = Field(None, ge=1, le=1_000_000)
    ratio: float | None = Field(None, gt=0.0, le=1.0)


def filter_field() -> Any:
    return Field(None, max_length=20, description=FILTER_DESCRIPTION)


# -- input checks shared by the request models -------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_METADATA_DEPTH = 8
MAX_METADATA_CHARS = 65_536


def check_text(value: str) -> str:
    """No C0 control characters but tab and line ends; no lone surrogates."""
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode (lone surrogate)") from None
    return value


def _depth(value: Any, limit: int) -> int:
    if isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, list):
        items = value
    else:
        return 0
    if limit <= 0:
        return 1
    return 1 + max((_depth(v, limit - 1) for v in items), default=0)


def check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """Metadata nested at most 8 deep, at most 64 KiB as JSON, of valid Unicode."""
    if _depth(value, MAX_METADATA_DEPTH) > MAX_METADATA_DEPTH:
        raise ValueError(f"metadata may be nested at most {MAX_METADATA_DEPTH} levels deep")
    try:
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"metadata is not plain JSON: {exc}") from None
    if size > MAX_METADATA_CHARS:
        raise ValueError(
            f"metadata is {size} characters as JSON; the limit is {MAX_METADATA_CHARS}"
        )
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("metadata is not valid Unicode (lone surrogate)") from None
    return value


CleanStr = Annotated[str, AfterValidator(check_text)]
Metadata = Annotated[dict[str, Any], AfterValidator(check_metadata)]
