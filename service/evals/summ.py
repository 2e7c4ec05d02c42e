"""Summary evaluation (placeholder until the summary evaluation lands)."""

from __future__ import annotations

import argparse

from service.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset")


def run(args: argparse.Namespace, settings: Settings) -> int:
    raise SystemExit("speechqa eval summ is not implemented yet")
