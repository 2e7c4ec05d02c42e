"""Loads each sentence-transformers model once per process and keeps it.

Models are hundreds of MB and take seconds to load, so every encoder with the same
(name, device) shares one instance. Loading never touches the network.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from embeddings.errors import ModelLoadError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

_models: dict[tuple[str, str], SentenceTransformer] = {}
_locks: dict[tuple[str, str], threading.Lock] = {}
# Guards the two dicts only; loading happens under the per-model lock, so a slow load of one
# model does not block lookups of another that is already loaded.
_registry_lock = threading.Lock()


def load_sentence_transformer(name_or_path: str, device: str = "cpu") -> SentenceTransformer:
    """Return the model for ``(name_or_path, device)``, loading it on first use.

    Raises ``ModelLoadError`` for any failure. A failed load is not cached, so a later call (after
    the files are put in place) tries again.
    """
    key = (name_or_path, device)
    with _registry_lock:
        model = _models.get(key)
        if model is not None:
            return model
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        model = _models.get(key)
        if model is None:
            model = _load(name_or_path, device)
            with _registry_lock:
                _models[key] = model
    return model


def _load(name_or_path: str, device: str) -> SentenceTransformer:
    try:
        # Imported here: torch and transformers take seconds to import, and the built-in encoder
        # never needs them.
        from sentence_transformers import SentenceTransformer

        # local_files_only: a name that is not a local directory must already be in the
        # Hugging Face cache; nothing is ever downloaded.
        return SentenceTransformer(name_or_path, device=device, local_files_only=True)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot load sentence-transformers model {name_or_path!r} on device {device!r}: "
            f"{type(exc).__name__}: {exc}. Loading is offline: give a local model directory, "
            "or a model name that is already in the Hugging Face cache."
        ) from exc


def clear_model_cache() -> None:
    """Forget every loaded model (tests, or freeing memory after a model change)."""
    with _registry_lock:
        _models.clear()
        _locks.clear()
