"""Session-wide fixtures: one seeded collection and one app, built once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import PROJECT_ROOT, Settings

SEED_DIR = PROJECT_ROOT / "seeds"
SEED_000 = "000_813e047d2b65814d"
SEED_002 = "002_5eb3c298e8b76e29"


def seed_text(doc_id: str) -> str:
    return (SEED_DIR / f"{doc_id}.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def seeded_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("seeded"), seed_dir=SEED_DIR)


@pytest.fixture(scope="session")
def client(seeded_settings: Settings) -> Iterator[TestClient]:
    """The app over the two seeds; tests that change documents use their own ids."""
    with TestClient(create_app(seeded_settings)) as c:
        yield c


@pytest.fixture
def fresh_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")
