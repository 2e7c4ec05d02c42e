"""Prometheus metrics in the text exposition format, without a client library.

``speechqa_http_requests_total{method, route, status}``, the latency histogram
``speechqa_http_request_duration_seconds{method, route}``, and at scrape time
``speechqa_documents`` and ``speechqa_passages``. Routes are path templates, so a client cannot
multiply the series by inventing paths (unknown paths are ``route="unmatched"``).
"""

from __future__ import annotations

import threading
from collections import defaultdict

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self._buckets: dict[tuple[str, str], list[int]] = {}
        self._sums: dict[tuple[str, str], float] = defaultdict(float)
        self._counts: dict[tuple[str, str], int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route)
        with self._lock:
            self._requests[(method, route, str(status))] += 1
            counts = self._buckets.setdefault(key, [0] * len(BUCKETS))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            self._sums[key] += seconds
            self._counts[key] += 1

    def render(self, gauges: dict[str, tuple[str, float]]) -> str:
        lines = [
            "# HELP speechqa_http_requests_total HTTP requests by method, route and status.",
            "# TYPE speechqa_http_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), n in sorted(self._requests.items()):
                labels = _labels(method=method, route=route, status=status)
                lines.append(f"speechqa_http_requests_total{labels} {n}")
            lines += [
                "# HELP speechqa_http_request_duration_seconds Time to answer by route.",
                "# TYPE speechqa_http_request_duration_seconds histogram",
            ]
            for (method, route), counts in sorted(self._buckets.items()):
                name = "speechqa_http_request_duration_seconds"
                for bound, n in zip(BUCKETS, counts, strict=True):
                    labels = _labels(method=method, route=route, le=_number(bound))
                    lines.append(f"{name}_bucket{labels} {n}")
                total = self._counts[(method, route)]
                inf = _labels(method=method, route=route, le="+Inf")
                lines.append(f"{name}_bucket{inf} {total}")
                plain = _labels(method=method, route=route)
                lines.append(f"{name}_sum{plain} {self._sums[(method, route)]!r}")
                lines.append(f"{name}_count{plain} {total}")
        for name, (help_text, value) in gauges.items():
            lines += [
                f"# HELP {name} {help_text}",
                f"# TYPE {name} gauge",
                f"{name} {_number(value)}",
            ]
        return "\n".join(lines) + "\n"
