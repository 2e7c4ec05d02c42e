"""An optional transformers extractive-QA reader, loaded lazily once per model path."""

from __future__ import annotations

import threading
from typing import Any

from models.errors import ModelUnavailable

_cache: dict[str, Any] = {}
_cache_lock = threading.Lock()


def _pipeline(model: str) -> Any:
    with _cache_lock:
        if model not in _cache:
            try:
                from transformers import pipeline

                _cache[model] = pipeline("question-answering", model=model, tokenizer=model)
            except Exception as exc:  # any load failure means the same thing to the caller
                raise ModelUnavailable(
                    f"cannot load the reader model {model!r}: {exc}. Without a model hub, "
                    "SPEECHQA_READER_MODEL must be a local directory."
                ) from exc
        return _cache[model]


class Reader:
    """Finds an answer span in one passage with a transformers question-answering model."""

    def __init__(self, model: str, *, max_answer_len: int = 40) -> None:
        self.model = model
        self.max_answer_len = max_answer_len

    def extract(self, question: str, context: str) -> tuple[int, int] | None:
        result = _pipeline(self.model)(
            question=question, context=context, max_answer_len=self.max_answer_len
        )
        if isinstance(result, list):
            result = result[0] if result else None
        if not result:
            return None
        start, end = int(result["start"]), int(result["end"])
        if not 0 <= start < end <= len(context):
            return None
        return start, end


def load_reader(model: str) -> Reader:
    """A reader for ``model``; the weights load on first use (fail fast: load them now)."""
    reader = Reader(model)
    _pipeline(model)
    return reader
