"""The metadata filter: dates at their precision, equality, lists, and bad filters."""

from __future__ import annotations

from typing import Any

import pytest

from service.errors import InvalidInput
from service.filters import parse_date, parse_filter


@pytest.mark.parametrize(
    ("value", "span"),
    [
        ("2019", ((2019, 1, 1), (2019, 12, 31))),
        (2019, ((2019, 1, 1), (2019, 12, 31))),
        ("2019-03", ((2019, 3, 1), (2019, 3, 31))),
        ("2019-03-05", ((2019, 3, 5), (2019, 3, 5))),
        ("2019/3/5", ((2019, 3, 5), (2019, 3, 5))),
        ("2019.03.05", ((2019, 3, 5), (2019, 3, 5))),
        ("2019-03-05T09:30:00+08:00", ((2019, 3, 5), (2019, 3, 5))),
        ("2019年3月5日", ((2019, 3, 5), (2019, 3, 5))),
        ("2019年3月", ((2019, 3, 1), (2019, 3, 31))),
        ("2019年", ((2019, 1, 1), (2019, 12, 31))),
        ("二〇一九年三月五日", ((2019, 3, 5), (2019, 3, 5))),
        ("二〇二四年十二月二十八日", ((2024, 12, 28), (2024, 12, 28))),
        ("2019年3月5日在第十三届全国人民代表大会第二次会议上", ((2019, 3, 5), (2019, 3, 5))),
    ],
)
def test_dates_are_read_at_their_precision(value: Any, span: Any) -> None:
    assert parse_date(value) == span


@pytest.mark.parametrize("value", ["", "去年", "19", "2019-13", "2019-02-40", None, True, 3.5])
def test_unreadable_dates(value: Any) -> None:
    assert parse_date(value) is None


def _match(raw: dict[str, Any], metadata: dict[str, Any], title: str = "报告") -> bool:
    where = parse_filter(raw)
    assert where is not None
    return where.matches(title, metadata)


def test_equality_any_of_lists_and_normalisation() -> None:
    meta = {"speaker": "Li  Qiang", "kind": "report", "year": "2019", "tags": ["经济", "民生"]}
    assert _match({"speaker": "li qiang"}, meta)
    assert _match({"speaker": ["王五", "Li Qiang"]}, meta)
    assert not _match({"speaker": "王五"}, meta)
    assert _match({"year": 2019}, meta)  # numbers compare as their text
    assert _match({"tags": "民生"}, meta)  # a list in the metadata: any element
    assert _match({"kind": "report", "speaker": "Li Qiang"}, meta)
    assert not _match({"kind": "report", "speaker": "王五"}, meta)  # AND
    assert not _match({"place": "北京"}, meta)  # missing key never matches
    assert _match({"title": "报告"}, meta, title="报告")  # the document's title


def test_date_conditions_overlap_at_the_precision_written() -> None:
    day = {"date": "2019年3月5日"}
    year = {"date": "2019"}
    assert _match({"date": "2019"}, day) and _match({"date": "2019-03"}, day)
    assert not _match({"date": "2019-04"}, day)
    assert _match({"date_from": "2019-03-05", "date_to": "2019-03-05"}, day)
    assert _match({"date_from": "2015", "date_to": "2019"}, day)
    assert not _match({"date_from": "2019-03-06"}, day)
    assert not _match({"date_to": "2019-03-04"}, day)
    assert _match({"date_to": "2019-12"}, year) and _match({"date_from": "2019-06"}, year)
    assert not _match({"date_from": "2020"}, year)
    assert not _match({"date_from": "2000"}, {"title": "没有日期"})
    assert not _match({"date": "2019"}, {"date": "去年"})
    assert _match({"date": ["2018", "2019-03"]}, day) and not _match({"date": ["2018"]}, day)
    assert not _match({"date": ["2019"], "date_from": "2019-04"}, day)  # all conditions hold


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"date_from": "last year"}, "not a date"),
        ({"speaker": []}, "1-100 values"),
        ({"date": []}, "1-100 dates"),
        ({"date": ["2019", "soon"]}, "not a date"),
        ({"speaker": None}, "strings, numbers or booleans"),
        ({"speaker": {"name": "x"}}, "strings, numbers or booleans"),
        ({f"k{i}": "v" for i in range(21)}, "limit is 20"),
        ({"": "v"}, "keys are"),
        ("speaker=x", "must be an object"),
    ],
)
def test_bad_filters_are_invalid_input(raw: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_filter(raw)


def test_no_filter() -> None:
    assert parse_filter(None) is None and parse_filter({}) is None
