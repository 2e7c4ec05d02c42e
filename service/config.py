"""Settings: one object, built once from the environment (prefix ``SPEECHQA_``) and passed in."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_seed_dir() -> Path | None:
    """The seeds shipped with the project: ``./seeds`` if present, else the checkout's own."""
    for candidate in (Path.cwd() / "seeds", PROJECT_ROOT / "seeds"):
        if candidate.is_dir():
            return candidate
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPEECHQA_", env_file=None, extra="ignore")

    data_dir: Path = Field(
        Path("data"), description="SQLite metadata and the FAISS index live here"
    )
    seed_dir: Path | None = Field(
        None, description="every .txt/.md here not already stored is ingested at start-up"
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)

    embedding_model: str | None = Field(
        None,
        description="sentence-transformers model name or local path; unset = built-in encoder",
    )
    embedding_device: str = "cpu"
    # 512 hashed dimensions keep a million passages at 2 GB of float32; the lexical side leads.
    builtin_dim: int = Field(512, ge=16, le=8192)
    reader_model: str | None = Field(
        None, description="transformers extractive-QA model (local path) used on top passages"
    )

    passage_max_chars: int = Field(1000, ge=32, le=4096)
    # Weight of the dense cosine added to the max-normalised BM25 score.
    dense_weight: float = Field(0.3, ge=0.0, le=10.0)
    candidate_pool: int = Field(100, ge=10, le=10_000)
    # ask declines below this probability (models/refusal.py) that the passages hold the answer;
    # unset = the threshold trained with the model (at most 5% wrongly declined on its data).
    refusal_threshold: float | None = Field(None, ge=0.0, le=1.0)

    # The FAISS file is rewritten at most this often during a burst of writes (and on close);
    # the store stays the source of truth, so a crash in between loses nothing.
    index_flush_seconds: float = Field(2.0, ge=0.0, le=3600.0)

    max_document_chars: int = Field(5_000_000, ge=1_000)
    max_query_chars: int = Field(2_000, ge=10)
    # Ingestion of files: the largest file read (from disk or uploaded), and per upload request
    # the most bytes and files.
    max_file_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    max_upload_bytes: int = Field(200 * 1024 * 1024, ge=1024)
    max_upload_files: int = Field(200, ge=1, le=10_000)

    # Keys accepted as `Authorization: Bearer <key>` by the chat endpoints (/v1/models,
    # /v1/chat/completions); empty = no authentication. From the environment: comma-separated.
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
