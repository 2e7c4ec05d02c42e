from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embeddings.base import Encoder
from embeddings.errors import EmbeddingError
from embeddings.hashing import HashingEncoder

REPO_ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "坚持以经济建设为中心，推进改革开放。",
    "The quick brown fox, 2023.",
    "",
    "經濟發展",
]


def test_satisfies_the_encoder_protocol() -> None:
    encoder = HashingEncoder()
    assert isinstance(encoder, Encoder)
    assert encoder.kind == "builtin"
    assert encoder.name == "builtin-hash-ngram-512"
    assert encoder.dim == 512
    assert encoder.max_chars == 512
    assert HashingEncoder(256, max_chars=300).max_chars == 300


def test_shape_dtype_and_unit_rows() -> None:
    vectors = HashingEncoder(128).encode(TEXTS)
    assert vectors.shape == (4, 128)
    assert vectors.dtype == np.float32
    assert vectors.flags.c_contiguous
    norms = np.linalg.norm(vectors, axis=1)
    np.testing.assert_allclose(norms[[0, 1, 3]], 1.0, atol=1e-6)
    # Nothing to hash: a zero row, not NaN.
    assert norms[2] == 0.0
    assert np.all(HashingEncoder(64).encode(["，。！"]) == 0.0)


def test_empty_batch() -> None:
    assert HashingEncoder(64).encode([]).shape == (0, 64)


def test_rejects_a_bare_string_and_bad_dim() -> None:
    with pytest.raises(EmbeddingError):
        HashingEncoder().encode("一段文字")  # type: ignore[arg-type]
    with pytest.raises(EmbeddingError):
        HashingEncoder(0)


def test_batch_and_single_encoding_agree() -> None:
    encoder = HashingEncoder(256)
    batch = encoder.encode(TEXTS)
    for i, text in enumerate(TEXTS):
        np.testing.assert_array_equal(encoder.encode([text])[0], batch[i])


def test_encoding_is_normalised_like_tokens() -> None:
    encoder = HashingEncoder(256)
    a, b = encoder.encode(["ＧＤＰ增长，２０２３", "gdp增长 2023"])
    np.testing.assert_allclose(a, b, atol=1e-7)


def test_known_buckets_and_signs_are_stable() -> None:
    # Stored indexes depend on these exact buckets: a change here needs a new encoder name.
    row = HashingEncoder(512).encode(["中国"])[0]
    nonzero = np.flatnonzero(row)
    assert nonzero.tolist() == [77, 331, 385]
    assert np.sign(row[nonzero]).astype(int).tolist() == [-1, 1, -1]


def test_deterministic_across_fresh_processes() -> None:
    code = (
        "import hashlib, sys\n"
        "from embeddings.hashing import HashingEncoder\n"
        f"v = HashingEncoder(512).encode({TEXTS!r})\n"
        "sys.stdout.write(hashlib.sha256(v.tobytes()).hexdigest())\n"
    )
    digests = set()
    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO_ROOT,
            # Different str-hash salts: a hash() slipping into the encoder would show here.
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        digests.add(result.stdout)
    here = hashlib.sha256(HashingEncoder(512).encode(TEXTS).tobytes()).hexdigest()
    assert digests == {here}


def test_similar_texts_are_closer_than_unrelated_ones() -> None:
    encoder = HashingEncoder(512)
    query, near, far = encoder.encode(
        [
            "国内生产总值增长百分之五",
            "今年国内生产总值比上年增长百分之五点二",
            "篮球比赛在周末的体育馆举行",
        ]
    )
    assert float(query @ near) > float(query @ far) + 0.2


def test_traditional_text_matches_itself_not_simplified_noise() -> None:
    encoder = HashingEncoder(512)
    a, b, c = encoder.encode(["經濟發展很快", "經濟發展迅速", "天氣晴朗"])
    assert float(a @ b) > float(a @ c)
