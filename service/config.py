"""Settings: one object, built once from the environment (prefix ``SPEECHQA_``) and passed in."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

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
    # Who picks the answer span: the learned span ranker, the hand-written rules, or "hybrid"
    # (the ranker, mended to keep quoted names whole, with the rules' quoted name when unsure).
    span_mode: Literal["rules", "ranker", "hybrid"] = "hybrid"

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
    # Above this many passages the exact FAISS scan gives way to a product-quantised scan whose
    # k x vector_k_factor candidates are re-ranked exactly (trained in the background); the
    # factor is tuned for recall@10 >= 0.97 against exact search unless set here.
    vector_exact_max: int = Field(50_000, ge=1)
    vector_k_factor: int | None = Field(None, ge=1, le=1000)

    max_document_chars: int = Field(5_000_000, ge=1_000)
    max_query_chars: int = Field(2_000, ge=10)
    # Ingestion of files: the largest file read (from disk or uploaded), and per upload request
    # the most bytes and files.
    max_file_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    max_upload_bytes: int = Field(200 * 1024 * 1024, ge=1024)
    max_upload_files: int = Field(200, ge=1, le=10_000)

    # Every request needs a request body of at most this many bytes (413 otherwise), checked on
    # Content-Length and on the bytes actually received; uploads have max_upload_bytes instead.
    # 5,000,000 characters of Chinese are 15 MB of UTF-8, and JSON escaping can double that.
    max_request_bytes: int = Field(32 * 1024 * 1024, ge=1024)

    # Access (see service/api/security.py). Keys are accepted as `Authorization: Bearer <key>`;
    # each entry is the key itself or `sha256:<hex digest of the key>` so that the configuration
    # need not hold the key. From the environment: comma-separated. With any key configured every
    # route but /healthz and the chat page's static files needs one; read-only keys may read,
    # search, ask, summarise and chat, not ingest, upload, delete or start batch jobs.
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    read_only_api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Without keys, `serve` refuses a host other than loopback unless this is set.
    allow_unauthenticated: bool = False
    # Origins allowed to call the API from a browser (CORS); empty = same origin only.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # "text" or "json" (one JSON object per line); one access line per request either way.
    log_format: Literal["text", "json"] = "text"

    @field_validator("api_keys", "read_only_api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
