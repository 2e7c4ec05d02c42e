from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from embeddings import model_cache
from embeddings.hashing import HashingEncoder
from embeddings.registry import clear_encoder_cache, get_encoder
from embeddings.transformer import SentenceTransformerEncoder


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    clear_encoder_cache()
    yield
    clear_encoder_cache()


def test_no_model_means_the_builtin_encoder() -> None:
    for model in (None, "", "  "):
        encoder = get_encoder(model)
        assert isinstance(encoder, HashingEncoder)
        assert encoder.dim == 512
    assert get_encoder(None, builtin_dim=256).dim == 256


def test_same_key_same_instance() -> None:
    assert get_encoder(None) is get_encoder("")
    assert get_encoder(None, builtin_dim=256) is get_encoder(None, builtin_dim=256)
    assert get_encoder(None, builtin_dim=256) is not get_encoder(None, builtin_dim=512)
    a = get_encoder("/models/some-model")
    assert a is get_encoder("/models/some-model")
    assert a is not get_encoder("/models/some-model", device="cuda")
    assert a is not get_encoder("/models/other-model")


def test_a_model_name_gives_a_lazy_sentence_transformer_encoder() -> None:
    encoder = get_encoder("/no/such/model/dir", device="cpu")
    assert isinstance(encoder, SentenceTransformerEncoder)
    assert encoder.kind == "sentence-transformers"
    assert encoder.name == "/no/such/model/dir"
    # Nothing was loaded (or attempted) by asking for the encoder.
    assert ("/no/such/model/dir", "cpu") not in model_cache._models


def test_concurrent_lookups_build_one_encoder() -> None:
    barrier = threading.Barrier(8)
    found: list[object] = []

    def lookup() -> None:
        barrier.wait()
        found.append(get_encoder(None, builtin_dim=128))

    threads = [threading.Thread(target=lookup) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(found) == 8
    assert all(e is found[0] for e in found)
