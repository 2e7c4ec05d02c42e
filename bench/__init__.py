"""Benchmarks of speechqa against the ceilings of what it is built on (see ``bench/run.py``)."""
