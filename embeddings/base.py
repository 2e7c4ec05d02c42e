"""The interface every passage encoder satisfies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into unit vectors whose inner product is their cosine similarity.

    ``kind`` is ``"builtin"`` or ``"sentence-transformers"``; ``name`` identifies the model, so that
    an index built with one encoder is never searched with vectors from another.
    """

    name: str
    kind: str

    @property
    def dim(self) -> int:
        """Length of every vector ``encode`` returns."""
        ...

    @property
    def max_chars(self) -> int:
        """The window, in characters, the encoder sees; longer passages are split upstream."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return a C-contiguous float32 array of shape ``(len(texts), dim)``.

        Rows are L2-normalised; a text with nothing to encode (empty, only punctuation) may give a
        zero row, which scores 0 against everything.
        """
        ...
