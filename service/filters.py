"""The metadata filter that narrows search, ask and summaries to some documents.

A filter is a JSON object; every condition must hold (AND):

- ``"key": value`` — the document's metadata ``key`` equals ``value`` (strings compared with
  white space collapsed and case folded; numbers and booleans as their JSON text). A list of
  values means any of them; a metadata value that is a list matches when any element does.
  ``"title"`` is the document's title.
- ``"date": "2019"`` — the metadata ``date`` falls in that year (or month, or day); a list of
  dates means any of them.
- ``"date_from"`` / ``"date_to"`` — inclusive bounds on the metadata ``date``, at the precision
  written: ``"date_to": "2019"`` includes all of 2019. A document without a readable date does
  not match a date condition.

Dates are read as ``2019``, ``2019-03``, ``2019-03-05`` (also ``/``, ``.``, or a time after it),
``2019年3月5日`` and ``二〇一九年三月五日``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.errors import InvalidInput

__all__ = ["MAX_KEYS", "MetadataFilter", "parse_date", "parse_filter"]

MAX_KEYS = 20
_MAX_VALUES = 100
_MAX_KEY_CHARS = 64
_MAX_VALUE_CHARS = 500

Day = tuple[int, int, int]

_CN_DIGITS = {
    "〇": "0",
    "○": "0",
    "零": "0",
    "一": "1",
    "二": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
}
_CN_YEAR = re.compile(r"[〇○零一二三四五六七八九]{4}")
_CN_SMALL = re.compile(
    r"(?<![〇○零一二三四五六七八九十])([一二三]?十[一二三四五六七八九]?|[一二三四五六七八九])(?=[月日号])"
)
_DATE = re.compile(
    r"^\s*(\d{4})\s*(?:[-/.年]\s*(\d{1,2})\s*(?:[-/.月]\s*(\d{1,2})\s*[日号]?|月)?)?\s*年?"
    r"(?![0-9])"
)


def _cn_small(numeral: str) -> str:
    if "十" not in numeral:
        return _CN_DIGITS[numeral]
    tens, _, ones = numeral.partition("十")
    return str((int(_CN_DIGITS[tens]) if tens else 1) * 10 + (int(_CN_DIGITS[ones]) if ones else 0))


def parse_date(value: Any) -> tuple[Day, Day] | None:
    """The first and last day a date names (a year, a month or a day), or None if unreadable."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    text = _CN_YEAR.sub(lambda m: "".join(_CN_DIGITS[c] for c in m.group(0)), text)
    text = _CN_SMALL.sub(lambda m: _cn_small(m.group(1)), text)
    m = _DATE.match(text)
    if m is None:
        return None
    year = int(m.group(1))
    if m.group(2) is None:
        return (year, 1, 1), (year, 12, 31)
    month = int(m.group(2))
    if not 1 <= month <= 12:
        return None
    if m.group(3) is None:
        return (year, month, 1), (year, month, 31)
    day = int(m.group(3))
    if not 1 <= day <= 31:
        return None
    return (year, month, day), (year, month, day)


def _norm(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split()).casefold()


@dataclass(frozen=True, slots=True)
class MetadataFilter:
    equals: tuple[tuple[str, frozenset[str]], ...] = ()
    date_from: Day | None = None
    date_to: Day | None = None
    dates: tuple[tuple[Day, Day], ...] = ()  # any of these

    def matches(self, title: str, metadata: Mapping[str, Any]) -> bool:
        for key, wanted in self.equals:
            value = title if key == "title" and "title" not in metadata else metadata.get(key)
            if value is None:
                return False
            values = value if isinstance(value, list) else [value]
            if not any(_norm(v) in wanted for v in values if not isinstance(v, dict | list)):
                return False
        if self.date_from is not None or self.date_to is not None or self.dates:
            span = parse_date(metadata.get("date"))
            if span is None:
                return False
            first, last = span
            if self.date_from is not None and last < self.date_from:
                return False
            if self.date_to is not None and first > self.date_to:
                return False
            if self.dates and not any(last >= a and first <= b for a, b in self.dates):
                return False
        return True


def _date_bound(key: str, value: Any) -> tuple[Day, Day]:
    span = parse_date(value)
    if span is None:
        raise InvalidInput(
            f"filter.{key}: {value!r} is not a date (write 2019, 2019-03 or 2019-03-05)"
        )
    return span


def parse_filter(raw: Mapping[str, Any] | None) -> MetadataFilter | None:
    """Check and compile a filter object; None or ``{}`` means no filter."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidInput("filter must be an object of metadata keys and values")
    if not raw:
        return None
    if len(raw) > MAX_KEYS:
        raise InvalidInput(f"filter has {len(raw)} keys; the limit is {MAX_KEYS}")
    equals: list[tuple[str, frozenset[str]]] = []
    date_from: Day | None = None
    date_to: Day | None = None
    dates: tuple[tuple[Day, Day], ...] = ()
    for key, value in raw.items():
        if not isinstance(key, str) or not 1 <= len(key) <= _MAX_KEY_CHARS:
            raise InvalidInput(f"filter keys are 1-{_MAX_KEY_CHARS} characters: got {key!r}")
        if key == "date":
            values = value if isinstance(value, list) else [value]
            if not values or len(values) > _MAX_VALUES:
                raise InvalidInput(f"filter.date: give 1-{_MAX_VALUES} dates")
            dates = tuple(_date_bound(key, v) for v in values)
            continue
        if key in ("date_from", "date_to"):
            first, last = _date_bound(key, value)
            if key == "date_from":
                date_from = first
            else:
                date_to = last
            continue
        values = value if isinstance(value, list) else [value]
        if not values or len(values) > _MAX_VALUES:
            raise InvalidInput(f"filter.{key}: give 1-{_MAX_VALUES} values")
        for v in values:
            if v is None or isinstance(v, dict | list):
                raise InvalidInput(f"filter.{key}: values are strings, numbers or booleans")
            if len(str(v)) > _MAX_VALUE_CHARS:
                raise InvalidInput(f"filter.{key}: a value is longer than {_MAX_VALUE_CHARS}")
        equals.append((key, frozenset(_norm(v) for v in values)))
    return MetadataFilter(tuple(equals), date_from, date_to, dates)
