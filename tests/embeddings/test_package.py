"""Package boundaries: no service or web imports, and heavy libraries load only when used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_importing_embeddings_pulls_in_no_service_fastapi_or_torch() -> None:
    code = (
        "import sys\n"
        "import embeddings.base, embeddings.bm25, embeddings.errors, embeddings.hashing\n"
        "import embeddings.model_cache, embeddings.registry, embeddings.tokens\n"
        "import embeddings.transformer, embeddings.vector_index\n"
        "from embeddings.registry import get_encoder\n"
        "get_encoder(None).encode(['经济'])\n"
        "get_encoder('/some/model')\n"
        "banned = {'service', 'fastapi', 'torch', 'sentence_transformers'}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in banned)\n"
        "print(bad)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"
