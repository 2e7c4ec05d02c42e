from __future__ import annotations

import pytest

from embeddings.tokens import lexical_tokens, normalize, query_tokens


def test_normalize_folds_width_and_case() -> None:
    assert normalize("ＧＤＰ　２０２３ＡＢＣ") == "gdp 2023abc"


def test_cjk_runs_give_overlapping_bigrams() -> None:
    assert lexical_tokens("人民代表大会") == ["人民", "民代", "代表", "表大", "大会"]


def test_single_character_run_is_a_unigram() -> None:
    assert lexical_tokens("我，你。他") == ["我", "你", "他"]


def test_punctuation_and_spaces_split_runs() -> None:
    assert lexical_tokens("改革，开放 发展") == ["改革", "开放", "发展"]


def test_latin_words_and_digit_runs_are_whole_tokens() -> None:
    assert lexical_tokens("2023年GDP增长5.2%") == ["2023", "年", "gdp", "增长", "5", "2"]
    assert lexical_tokens("Hello, World-wide 42") == ["hello", "world", "wide", "42"]


def test_full_width_digits_and_letters_match_ascii() -> None:
    assert lexical_tokens("２０２３年ＧＤＰ") == lexical_tokens("2023年GDP")


def test_traditional_script_folds_to_simplified() -> None:
    # Either script finds the other: a traditional question matches a simplified speech.
    assert lexical_tokens("經濟發展") == ["经济", "济发", "发展"] == lexical_tokens("经济发展")
    assert normalize("臺灣的經濟") == "台湾的经济"


def test_empty_and_punctuation_only() -> None:
    assert lexical_tokens("") == []
    assert lexical_tokens("，。！？ …") == []


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            "战国无双是由哪两个公司开发的？",
            [
                "战国",
                "国无",
                "无双",
                "双是",
                "是由",
                "两个",
                "个公",
                "公司",
                "司开",
                "开发",
                "发的",
            ],
        ),
        ("2023年GDP增长了多少？", ["2023", "年", "gdp", "增长", "长了"]),
        ("谁提出了改革开放？", ["提出", "出了", "了改", "改革", "革开", "开放"]),
        ("为什么要坚持改革", ["要坚", "坚持", "持改", "改革"]),
        ("会议什么时候召开", ["会议", "召开"]),
        ("他是否同意呢", ["他", "同意"]),
        ("首都在哪里", ["首都", "都在"]),
    ],
)
def test_query_tokens_drop_question_words(question: str, expected: list[str]) -> None:
    assert query_tokens(question) == expected


def test_removed_question_word_leaves_a_gap_not_a_bridging_bigram() -> None:
    # Without the gap, "由" and "两" would join into the bigram "由两".
    tokens = query_tokens("由哪两个")
    assert "由两" not in tokens
    assert tokens == ["由", "两个"]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("誰提出了改革開放？", ["提出", "出了", "了改", "改革", "革开", "开放"]),
        ("為什麼要堅持改革", ["要坚", "坚持", "持改", "改革"]),
        ("首都在哪裡", ["首都", "都在"]),
        ("這是什麼", ["这是"]),
    ],
)
def test_query_tokens_drop_traditional_question_words(question: str, expected: list[str]) -> None:
    assert query_tokens(question) == expected


def test_ji_is_kept_inside_non_question_words() -> None:
    assert query_tokens("他几乎每年去几次") == ["他几", "几乎", "乎每", "每年", "年去", "次"]
    assert "几何" in query_tokens("几何学")


def test_statement_without_question_words_is_unchanged() -> None:
    text = "中国经济总量2023年达到126万亿元"
    assert query_tokens(text) == lexical_tokens(text)
