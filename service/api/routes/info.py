"""What this service holds and which encoder it uses."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from service.api.deps import SpeechesDep

router = APIRouter(tags=["info"])


class EmbedderOut(BaseModel):
    name: str
    dim: int
    kind: str


class InfoOut(BaseModel):
    version: str
    documents: int
    passages: int
    embedder: EmbedderOut
    reader: str | None
    lexical: str
    dense_weight: float
    data_dir: str


@router.get("/v1/info")
def info(speeches: SpeechesDep) -> InfoOut:
    return InfoOut.model_validate(speeches.info())
