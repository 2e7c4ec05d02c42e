"""File readers: encodings, front matter, .docx, .pdf and .html, and malformed files."""

from __future__ import annotations

import io
import zipfile

import pytest

from service.errors import InvalidInput
from service.formats import (
    FormatError,
    UnsupportedFormat,
    decode_text,
    parse_front_matter,
    read_document,
    reflow,
)
from service.outline import parse_outline
from tests.service.builders import cjk_font, make_docx, make_html, make_pdf

SPEECH = [
    "同志们：",
    "今天召开全县水利工作会议，主要任务是部署今年的水利工作。",
    "一、抓好防汛抗旱",
    "要在汛前完成全部12座水库的除险加固，确保安全度汛。",
    "（一）压实防汛责任",
    "各乡镇主要负责同志是防汛第一责任人，要坚守岗位、靠前指挥。",
    "二、抓好农田水利",
    "今年新建高效节水灌溉面积3.5万亩，灌区配套改造投资2.8亿元。",
]
TEXT = "\n".join(SPEECH) + "\n"


def _outline_titles(text: str) -> list[tuple[str, str]]:
    return [(s.id, s.title) for s in parse_outline(text).walk()]


# -- encodings -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("encoding", "detected"),
    [
        ("utf-8", "utf_8"),
        ("utf-8-sig", "utf_8"),
        ("gbk", "gb18030"),
        ("gb18030", "gb18030"),
        ("utf-16", "utf_16"),  # with BOM
        ("utf-16-le", "utf_16_le"),  # without
        ("big5", "big5"),
    ],
)
def test_text_files_are_decoded_whatever_their_encoding(encoding: str, detected: str) -> None:
    text = TEXT if encoding != "big5" else "各位代表：\n一、過去一年的工作\n經濟運行穩中有進。\n"
    extracted = read_document(text.encode(encoding), "speech.txt")
    assert extracted.text.lstrip("\ufeff") == text
    assert extracted.metadata == {"encoding": detected}
    assert extracted.format == "text"


def test_gb18030_characters_outside_gbk_survive() -> None:
    text = "一、要点\n𠮷野家和䶮字都要正确解码，确保万无一失。\n"
    assert decode_text(text.encode("gb18030")) == (text, "gb18030")


def test_short_texts_prefer_gbk_to_big5_and_refuse_control_characters() -> None:
    assert decode_text("会议".encode("gbk")) == ("会议", "gb18030")
    # As GB18030 these four bytes would hold a control character: not a reading to keep.
    assert decode_text("会议".encode("utf-16-le")) == ("会议", "utf_16_le")


def test_binary_or_mangled_text_is_refused_not_guessed() -> None:
    with pytest.raises(FormatError, match="encoding"):
        read_document(b"\xff\xfe\xfa not utf-8 \xc3", "broken.txt")
    with pytest.raises(FormatError, match="no text"):
        read_document("\n \u3000\n".encode(), "blank.md")


# -- front matter ----------------------------------------------------------------------------
def test_front_matter_gives_metadata_and_keeps_line_numbers() -> None:
    raw = (
        "---\ntitle: 在全县水利工作会议上的讲话\n讲话人: 李明\ndate: 2024年3月5日\n"
        "地点: 县委礼堂\nid: water-2024\n# a comment\n---\n" + TEXT
    )
    extracted = read_document(raw.encode("gbk"), "ignored-name.txt")
    assert extracted.title == "在全县水利工作会议上的讲话"
    assert extracted.doc_id == "water-2024"
    assert extracted.metadata == {
        "encoding": "gb18030",
        "speaker": "李明",
        "date": "2024年3月5日",
        "place": "县委礼堂",
    }
    lines = extracted.text.split("\n")
    assert lines[:8] == [""] * 8
    assert lines[8:] == TEXT.split("\n")  # line 9 of the file is line 9 of the document
    assert _outline_titles(extracted.text) == _outline_titles(TEXT)


def test_a_leading_rule_that_is_not_front_matter_stays_text() -> None:
    raw = "---\n这不是元数据，只是一条分隔线后的正文。\n---\n一、正文\n内容。\n"
    assert parse_front_matter(raw) == (raw, {})
    crlf = "---\r\nspeaker: 王五\r\n---\r\n正文一句。\r\n"
    text, fields = parse_front_matter(crlf)
    assert fields == {"speaker": "王五"} and text == "\n\n\n正文一句。\n"


# -- Word ------------------------------------------------------------------------------------
def test_docx_paragraphs_become_lines_with_properties_as_metadata() -> None:
    data = make_docx(SPEECH, title="水利工作会议讲话", author="李明")
    extracted = read_document(data, "speech.docx")
    assert extracted.format == "docx"
    assert extracted.text == "\n".join(SPEECH)
    assert extracted.title == "水利工作会议讲话"
    assert extracted.metadata == {"author": "李明"}
    assert _outline_titles(extracted.text) == _outline_titles(TEXT)


def test_docx_tables_and_front_matter() -> None:
    import docx

    document = docx.Document()
    document.core_properties.author = ""
    for line in ("---", "speaker: 王五", "date: 2023-12-01", "---", "一、主要指标"):
        document.add_paragraph(line)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "指标", "数值"
    table.cell(1, 0).text, table.cell(1, 1).text = "粮食产量", "52万吨"
    document.add_paragraph("二、下一步工作")
    out = io.BytesIO()
    document.save(out)
    extracted = read_document(out.getvalue(), "t.docx")
    assert extracted.metadata == {"speaker": "王五", "date": "2023-12-01"}
    assert extracted.text.split("\n")[4:] == [
        "一、主要指标",
        "指标　数值",
        "粮食产量　52万吨",
        "二、下一步工作",
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"this is not a zip file",
        b"PK\x03\x04 truncated zip header",
        b"",
    ],
)
def test_malformed_docx_is_a_format_error(data: bytes) -> None:
    with pytest.raises(FormatError, match=r"bad\.docx"):
        read_document(data, "bad.docx")


def test_a_zip_that_is_not_a_word_document_is_a_format_error() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "你好")
    with pytest.raises(FormatError, match="not a readable docx"):
        read_document(out.getvalue(), "fake.docx")


# -- PDF -------------------------------------------------------------------------------------
LATIN = [
    "Fellow deputies:",
    "1. Review of 2019",
    "The economy grew by 6.1 percent and 13.52 million urban jobs were added, which is a "
    "long paragraph that the PDF writer must wrap across several lines of the page for sure.",
    "2. Tasks for 2020",
    "We will keep growth stable.",
]


def test_pdf_text_layer_with_wrapped_lines_rejoined_and_page_numbers_dropped() -> None:
    extracted = read_document(make_pdf(LATIN, title="Report 2019", author="Li Qiang"), "r.pdf")
    assert extracted.format == "pdf"
    assert extracted.text.split("\n") == LATIN
    assert extracted.title == "Report 2019"
    assert extracted.metadata == {"author": "Li Qiang"}


def test_chinese_pdf_keeps_its_outline() -> None:
    font = cjk_font()
    if font is None:
        pytest.fail("no font with Chinese glyphs on this machine (fc-list :lang=zh): run .ci/run")
    long_point = SPEECH[5] * 4  # wraps over several lines
    paragraphs = [*SPEECH[:5], long_point, *SPEECH[6:]]
    extracted = read_document(make_pdf(paragraphs, font=font, title="水利会议"), "cn.pdf")
    assert extracted.text.split("\n") == paragraphs
    assert extracted.title == "水利会议"
    assert [t for _, t in _outline_titles(extracted.text)] == [
        t for _, t in _outline_titles("\n".join(paragraphs))
    ]


def test_pdf_without_text_and_broken_pdfs_are_format_errors() -> None:
    from fpdf import FPDF

    blank = FPDF()
    blank.add_page()
    with pytest.raises(FormatError, match="no text layer"):
        read_document(bytes(blank.output()), "scan.pdf")
    with pytest.raises(FormatError, match=r"broken\.pdf"):
        read_document(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage", "broken.pdf")
    with pytest.raises(FormatError):
        read_document(make_pdf(LATIN)[:300], "truncated.pdf")


def test_reflow_keeps_headings_and_sentence_ends() -> None:
    lines = [
        "一、总体要求",
        "这是一行写满了的长句子没有结束",
        "在这一行结束。",
        "短行",
        "（一）下一点",
    ]
    assert reflow(lines) == [
        "一、总体要求",
        "这是一行写满了的长句子没有结束在这一行结束。",
        "短行",
        "（一）下一点",
    ]


# -- HTML ------------------------------------------------------------------------------------
def test_html_blocks_become_lines_and_chrome_is_dropped() -> None:
    page = make_html(SPEECH, title="水利工作会议讲话_县政府网", meta={"author": "李明"})
    page = page.replace("<p>同志们：</p>", "<p>同志们：</p><!-- 一、注释 -->")
    page = page.replace(
        SPEECH[3], SPEECH[3][:10] + "\n   <b>" + SPEECH[3][10:16] + "</b>" + SPEECH[3][16:]
    )
    extracted = read_document(page.encode("utf-8"), "speech.html")
    assert extracted.format == "html"
    assert extracted.title == "水利工作会议讲话_县政府网"
    assert extracted.metadata == {"author": "李明"}
    assert extracted.text.split("\n") == ["水利工作会议讲话_县政府网", *SPEECH]
    assert "首页" not in extracted.text and "tracker" not in extracted.text


def test_html_in_gbk_with_br_and_meta_date() -> None:
    page = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gbk">'
        '<meta name="date" content="2019-03-05"></head><body>'
        "<h1>政府工作报告</h1><div>各位代表：<br>现在，我代表国务院报告工作。</div>"
        "<ul><li>一、过去一年的工作</li><li>二、今年的任务</li></ul></body></html>"
    )
    extracted = read_document(page.encode("gbk"), "report.htm")
    assert extracted.title == "政府工作报告"
    assert extracted.metadata == {"date": "2019-03-05"}
    assert extracted.text.split("\n") == [
        "政府工作报告",
        "各位代表：",
        "现在，我代表国务院报告工作。",
        "一、过去一年的工作",
        "二、今年的任务",
    ]


# -- what is not read ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["slides.pptx", "notes.rtf", "README", "speech.doc"])
def test_unknown_extensions_are_unsupported(name: str) -> None:
    with pytest.raises(UnsupportedFormat) as info:
        read_document(b"whatever", name)
    assert info.value.status == 415 and ".docx" in info.value.message


def test_format_errors_are_bad_input() -> None:
    assert issubclass(FormatError, InvalidInput) and FormatError.status == 400
