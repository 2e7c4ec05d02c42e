"""Deployment files, checked without a Docker engine: docker-compose.yml parsed as YAML, the
Dockerfile linted for what the image needs, both in step with Settings and the README."""

from __future__ import annotations

import json
import re
from fnmatch import fnmatch
from typing import Any

import pytest
import yaml

from service.config import PROJECT_ROOT, Settings

TORCH = "2.13.0"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in (PROJECT_ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def _settings_env() -> set[str]:
    return {f"SPEECHQA_{name.upper()}" for name in Settings.model_fields}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def test_dockerfile_has_what_the_image_needs() -> None:
    steps = _instructions()
    names = [n for n, _ in steps]
    assert names[0] in ("FROM", "ARG") and re.match(r"python:3\.11", dict(steps)["FROM"])
    known = {"FROM", "ARG", "ENV", "RUN", "COPY", "WORKDIR", "USER", "EXPOSE", "VOLUME"}
    assert set(names) <= known | {"HEALTHCHECK", "CMD", "LABEL"}, set(names) - known
    args = dict(a.split("=", 1) for n, a in steps if n == "ARG" and "=" in a)
    # CPU torch, pinned, from PyTorch's CPU index.
    assert args["TORCH_VERSION"] == TORCH
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    runs = " ".join(a for n, a in steps if n == "RUN")
    assert '--index-url "$TORCH_INDEX_URL" "torch==${TORCH_VERSION}"' in runs
    assert runs.index("torch==") < runs.index("pip install --no-cache-dir .")
    # Runs as a non-root user, set after the last RUN.
    users = [i for i, (n, _) in enumerate(steps) if n == "USER"]
    assert users and steps[users[-1]][1] not in ("root", "0", "0:0")
    assert users[-1] > max(i for i, (n, _) in enumerate(steps) if n == "RUN")
    assert "useradd" in runs and "chown speechqa:speechqa /data" in runs
    # LightGBM (the span ranker) needs the OpenMP runtime that slim images lack.
    assert "libgomp1" in runs
    # A health check on the unauthenticated liveness route, on the port it exposes.
    [health] = [a for n, a in steps if n == "HEALTHCHECK"]
    assert health.split("CMD", 1)[0].strip() and "http://127.0.0.1:8000/healthz" in health
    assert [a for n, a in steps if n == "EXPOSE"] == ["8000"]
    env = " ".join(a for n, a in steps if n == "ENV")
    assert "SPEECHQA_HOST=0.0.0.0" in env and "SPEECHQA_PORT=8000" in env
    assert "SPEECHQA_DATA_DIR=/data" in env
    assert set(re.findall(r"SPEECHQA_\w+", env)) <= _settings_env()
    # CMD in exec form, running the installed entry point.
    [cmd] = [a for n, a in steps if n == "CMD"]
    assert json.loads(cmd)[:2] == ["speechqa", "serve"]


def test_dockerfile_copies_what_exists_and_is_not_ignored() -> None:
    ignored = [
        line.strip()
        for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = set()
    for name, arg in _instructions():
        if name != "COPY":
            continue
        *sources, _dest = arg.split()
        for src in sources:
            assert (PROJECT_ROOT / src).exists(), src
            assert not any(fnmatch(src, pattern) for pattern in ignored), src
            copied.add(src.rstrip("/"))
    # Every package pyproject installs is in the image.
    for package in ("service", "embeddings", "models"):
        assert package in copied
    assert {"pyproject.toml", "README.md"} <= copied


def test_compose_file(compose: dict[str, Any]) -> None:
    service = compose["services"]["speechqa"]
    assert service["build"]["context"] == "."
    assert service["build"]["args"]["TORCH_VERSION"] == TORCH
    assert "download.pytorch.org/whl/cpu" in service["build"]["args"]["TORCH_INDEX_URL"]
    # Published on the host's loopback unless asked otherwise.
    [port] = service["ports"]
    assert port == "${SPEECHQA_PUBLISH:-127.0.0.1:8000}:8000"
    env = service["environment"]
    assert set(env) - {"OMP_NUM_THREADS", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} <= (
        _settings_env()
    )
    assert env["SPEECHQA_DATA_DIR"] == "/data"
    for name in ("SPEECHQA_API_KEYS", "SPEECHQA_READ_ONLY_API_KEYS", "SPEECHQA_EMBEDDING_MODEL"):
        assert env[name] == f"${{{name}:-}}"
    assert env["SPEECHQA_ALLOW_UNAUTHENTICATED"].endswith(":-false}")
    # The data dir on a named volume, local models mounted read-only at /models.
    volumes = service["volumes"]
    data = [v for v in volumes if v.split(":")[1] == "/data"]
    assert data and data[0].split(":")[0] in compose["volumes"]
    assert "./local-models:/models:ro" in volumes and (PROJECT_ROOT / "local-models").is_dir()
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert "SPEECHQA_EMBEDDING_MODEL=/models/" in text
    check = service["healthcheck"]
    assert check["test"][0] == "CMD" and "/healthz" in check["test"][-1]


def test_readme_names_only_real_settings() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    named = set(re.findall(r"`(SPEECHQA_[A-Z_]+)`", readme))
    assert named, "the README's settings table is gone"
    assert named <= _settings_env(), named - _settings_env()
    assert "docker compose up" in readme
