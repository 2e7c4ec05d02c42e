"""Exceptions of the answering and summarising models."""

from __future__ import annotations


class ModelError(Exception):
    """Base class for failures inside ``models``."""


class ModelUnavailable(ModelError):
    """A configured model could not be loaded."""
