"""The real sentence-transformers path, with the offline all-MiniLM-L6-v2 package."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings import model_cache
from embeddings.base import Encoder
from embeddings.errors import ModelLoadError
from embeddings.transformer import SentenceTransformerEncoder


def test_metadata(minilm_encoder: SentenceTransformerEncoder, minilm_path: object) -> None:
    assert isinstance(minilm_encoder, Encoder)
    assert minilm_encoder.kind == "sentence-transformers"
    assert minilm_encoder.name == str(minilm_path)
    assert minilm_encoder.dim == 384
    # max_seq_length 256 tokens, less [CLS] and [SEP].
    assert minilm_encoder.max_chars == 254


def test_explicit_max_chars_wins(minilm_path: object) -> None:
    assert SentenceTransformerEncoder(str(minilm_path), max_chars=100).max_chars == 100


def test_rows_are_normalised_float32(minilm_encoder: SentenceTransformerEncoder) -> None:
    vectors = minilm_encoder.encode(["A cat sits on the mat.", "经济发展", "x" * 3000])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_paraphrases_are_closer_than_unrelated(minilm_encoder: SentenceTransformerEncoder) -> None:
    a, b, c = minilm_encoder.encode(
        [
            "The economy grew by five percent last year.",
            "Last year the economy expanded by 5%.",
            "My cat likes to sleep on the sofa.",
        ]
    )
    assert float(a @ b) > 0.7
    assert float(a @ b) > float(a @ c) + 0.4


def test_batching_does_not_change_vectors(minilm_encoder: SentenceTransformerEncoder) -> None:
    texts = [f"sentence number {i} about the weather" for i in range(11)]
    batched = minilm_encoder.encode(texts)  # batch_size 8: two batches
    singles = np.vstack([minilm_encoder.encode([t]) for t in texts[:3]])
    np.testing.assert_allclose(batched[:3], singles, atol=1e-5)


def test_empty_input_and_blank_text(minilm_encoder: SentenceTransformerEncoder) -> None:
    assert minilm_encoder.encode([]).shape == (0, 384)
    vectors = minilm_encoder.encode(["", "  ", "hello"])
    assert np.all(vectors[:2] == 0.0)
    assert np.linalg.norm(vectors[2]) == pytest.approx(1.0, abs=1e-5)


def test_encoders_share_one_loaded_model(
    minilm_encoder: SentenceTransformerEncoder, minilm_path: object
) -> None:
    other = SentenceTransformerEncoder(str(minilm_path), batch_size=2)
    assert other.model is minilm_encoder.model
    assert model_cache.load_sentence_transformer(str(minilm_path), "cpu") is other.model


def test_bad_model_path_raises_model_load_error() -> None:
    encoder = SentenceTransformerEncoder("/no/such/model/dir")  # constructing is fine
    with pytest.raises(ModelLoadError, match="local model directory"):
        encoder.encode(["text"])
    with pytest.raises(ModelLoadError):
        _ = encoder.dim
