from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from embeddings import model_cache
from embeddings.errors import ModelLoadError


def test_concurrent_first_use_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []

    def slow_load(name: str, device: str) -> object:
        calls.append((name, device))
        time.sleep(0.05)
        return object()

    monkeypatch.setattr(model_cache, "_load", slow_load)
    key = ("fake-model-for-cache-test", "cpu")
    try:
        results: list[object] = []
        threads = [
            threading.Thread(
                target=lambda: results.append(model_cache.load_sentence_transformer(*key))
            )
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert calls == [key]
        assert all(r is results[0] for r in results)
        assert model_cache.load_sentence_transformer(*key) is results[0]
        other = model_cache.load_sentence_transformer("fake-model-for-cache-test", "meta")
        assert other is not results[0]
    finally:
        with model_cache._registry_lock:
            model_cache._models.pop(key, None)
            model_cache._models.pop(("fake-model-for-cache-test", "meta"), None)


def test_missing_path_raises_model_load_error() -> None:
    with pytest.raises(ModelLoadError, match="offline") as info:
        model_cache.load_sentence_transformer("/definitely/not/a/model", "cpu")
    assert "/definitely/not/a/model" in str(info.value)
    assert ("/definitely/not/a/model", "cpu") not in model_cache._models


def test_directory_without_a_model_raises_model_load_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError):
        model_cache.load_sentence_transformer(str(tmp_path), "cpu")


def test_unknown_hub_name_is_not_downloaded() -> None:
    # Not in the local cache: must fail fast instead of reaching for the network.
    start = time.monotonic()
    with pytest.raises(ModelLoadError):
        model_cache.load_sentence_transformer("speechqa-test/no-such-model-xyz", "cpu")
    assert time.monotonic() - start < 20
