"""Chooses and caches the encoder for a configured model name."""

from __future__ import annotations

import threading

from embeddings.base import Encoder
from embeddings.hashing import HashingEncoder
from embeddings.transformer import SentenceTransformerEncoder

_encoders: dict[tuple[str, ...], Encoder] = {}
_lock = threading.Lock()


def get_encoder(model: str | None, *, builtin_dim: int = 512, device: str = "cpu") -> Encoder:
    """The encoder for ``model``: the built-in hashing encoder when it is ``None`` or blank, else a
    sentence-transformers model (a local path, or a name already in the Hugging Face cache).

    The same arguments return the same instance. Cheap: a transformer model is only loaded on the
    encoder's first use.
    """
    name = (model or "").strip()
    key = ("builtin", str(builtin_dim)) if not name else ("sentence-transformers", name, device)
    with _lock:
        encoder = _encoders.get(key)
        if encoder is None:
            if name:
                encoder = SentenceTransformerEncoder(name, device=device)
            else:
                encoder = HashingEncoder(builtin_dim, max_chars=4096)
            _encoders[key] = encoder
        return encoder


def clear_encoder_cache() -> None:
    """Forget cached encoders (tests); loaded models stay in ``model_cache``."""
    with _lock:
        _encoders.clear()
