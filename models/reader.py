"""An optional transformers extractive-QA reader, loaded lazily once per model path.

transformers 5 removed the ``question-answering`` pipeline, so this does what it did: encode
(question, passage) in overlapping windows, score start/end logits, and map the best span
back to character offsets of the passage.
"""

from __future__ import annotations

import threading
from typing import Any

from models.errors import ModelUnavailable

_cache: dict[str, tuple[Any, Any]] = {}
_cache_lock = threading.Lock()


def _load(model: str) -> tuple[Any, Any]:
    with _cache_lock:
        if model not in _cache:
            try:
                from transformers import AutoModelForQuestionAnswering, AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
                network = AutoModelForQuestionAnswering.from_pretrained(
                    model, local_files_only=True
                )
                network.eval()
            except Exception as exc:  # any load failure means the same thing to the caller
                raise ModelUnavailable(
                    f"cannot load the reader model {model!r}: {exc}. Without a model hub, "
                    "SPEECHQA_READER_MODEL must be a local directory."
                ) from exc
            _cache[model] = (tokenizer, network)
        return _cache[model]


class Reader:
    """Finds an answer span in one passage with a transformers question-answering model."""

    def __init__(
        self, model: str, *, max_answer_tokens: int = 40, max_length: int = 384, stride: int = 128
    ) -> None:
        self.model = model
        self.max_answer_tokens = max_answer_tokens
        self.max_length = max_length
        self.stride = stride

    def extract(self, question: str, context: str) -> tuple[int, int] | None:
        """Character offsets of the best span of ``context``, or None if there is none."""
        import torch

        tokenizer, network = _load(self.model)
        enc = tokenizer(
            question,
            context,
            truncation="only_second",
            max_length=self.max_length,
            stride=self.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=True,
            return_tensors="pt",
        )
        offsets = enc.pop("offset_mapping").tolist()
        enc.pop("overflow_to_sample_mapping", None)
        with torch.inference_mode():
            out = network(**enc)
        best: tuple[float, int, int] | None = None
        for w in range(len(offsets)):
            seq_ids = enc.sequence_ids(w)
            context_tokens = [i for i, s in enumerate(seq_ids) if s == 1]
            if not context_tokens:
                continue
            start_logits = out.start_logits[w].tolist()
            end_logits = out.end_logits[w].tolist()
            starts = sorted(context_tokens, key=lambda i: -start_logits[i])[:20]
            ends = sorted(context_tokens, key=lambda i: -end_logits[i])[:20]
            for i in starts:
                for j in ends:
                    if i <= j < i + self.max_answer_tokens:
                        score = start_logits[i] + end_logits[j]
                        if best is None or score > best[0]:
                            best = (score, offsets[w][i][0], offsets[w][j][1])
        if best is None or not 0 <= best[1] < best[2] <= len(context):
            return None
        return best[1], best[2]


def load_reader(model: str) -> Reader:
    """A reader for ``model``, its weights loaded now so a bad path fails at start-up."""
    _load(model)
    return Reader(model)
