"""The embeddings package's own exceptions; callers map them to whatever their layer needs."""

from __future__ import annotations


class EmbeddingError(Exception):
    """Base class for every failure raised by ``embeddings``."""


class ModelLoadError(EmbeddingError):
    """An encoder's model could not be loaded (bad path, missing files, no cached copy)."""


class IndexFormatError(EmbeddingError):
    """A saved index is unreadable: truncated, corrupt, of another format or another dimension."""
