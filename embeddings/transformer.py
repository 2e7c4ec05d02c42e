"""Encoder backed by a sentence-transformers model from a local path or the local HF cache."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from embeddings.errors import EmbeddingError
from embeddings.model_cache import load_sentence_transformer

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# [CLS] and [SEP] take two positions of the model's window; Chinese BERT-style tokenizers spend
# about one token per character, so this many characters fit in the window.
_SPECIAL_TOKENS = 2


class SentenceTransformerEncoder:
    """A sentence-transformers model as an ``Encoder``.

    The constructor only stores configuration; the model is loaded (once per process, shared
    through ``model_cache``) on the first use of ``dim``, ``max_chars`` or ``encode``, which raise
    ``ModelLoadError`` if it cannot be loaded.
    """

    kind: str = "sentence-transformers"

    def __init__(
        self,
        name_or_path: str,
        device: str = "cpu",
        batch_size: int = 32,
        max_chars: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise EmbeddingError(f"batch_size must be positive, got {batch_size}")
        if max_chars is not None and max_chars < 1:
            raise EmbeddingError(f"max_chars must be positive, got {max_chars}")
        self.name = name_or_path
        self.device = device
        self.batch_size = batch_size
        self._max_chars = max_chars

    @property
    def model(self) -> SentenceTransformer:
        return load_sentence_transformer(self.name, self.device)

    @property
    def dim(self) -> int:
        model = self.model
        # sentence-transformers 6 renamed the method; the old name still works but warns.
        getter = getattr(model, "get_embedding_dimension", None)
        dim = getter() if getter is not None else model.get_sentence_embedding_dimension()
        if dim is None:
            raise EmbeddingError(f"model {self.name!r} does not report its embedding dimension")
        return int(dim)

    @property
    def max_chars(self) -> int:
        if self._max_chars is not None:
            return self._max_chars
        max_seq_length = self.model.max_seq_length
        if not max_seq_length:
            raise EmbeddingError(f"model {self.name!r} does not report max_seq_length")
        return max(1, int(max_seq_length) - _SPECIAL_TOKENS)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise EmbeddingError("encode takes a sequence of texts, not a single string")
        model = self.model
        dim = self.dim
        if len(texts) == 0:
            return np.zeros((0, dim), dtype=np.float32)
        try:
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        except Exception as exc:
            raise EmbeddingError(f"model {self.name!r} failed to encode: {exc}") from exc
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(texts), dim):
            expected = (len(texts), dim)
            raise EmbeddingError(
                f"model {self.name!r} returned shape {vectors.shape}, expected {expected}"
            )
        # The model still embeds "[CLS][SEP]" for a blank text, a vector that would match
        # unrelated queries; a zero row matches nothing, like the built-in encoder's.
        blank = np.fromiter((not t.strip() for t in texts), dtype=bool, count=len(texts))
        vectors[blank] = 0.0
        return vectors
