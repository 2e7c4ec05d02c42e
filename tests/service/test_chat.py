"""The conversation core: turn resolution, routing, and replies whose markers point at citations."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.chat import (
    NOT_FOUND_REPLY,
    NOT_FOUND_SELECTED_REPLY,
    Chat,
    ChatMessage,
    ChatReply,
    _section_reference,
    _subjects,
    _substitute,
)
from service.config import Settings
from service.core import Speeches
from service.errors import InvalidInput, NotFound
from tests.conftest import SEED_000, SEED_002, SEED_DIR, seed_text


@pytest.fixture(scope="module")
def speeches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Speeches]:
    with Speeches(Settings(data_dir=tmp_path_factory.mktemp("chat") / "data")) as s:
        s.ingest_paths([SEED_DIR])
        yield s


def converse(speeches: Speeches, *turns: str, doc_ids: list[str] | None = None) -> list[ChatReply]:
    """Each turn answered with the conversation so far, as a front end sends it."""
    messages: list[ChatMessage] = [ChatMessage("system", "You are a helpful assistant.")]
    replies = []
    for turn in turns:
        messages.append(ChatMessage("user", turn))
        reply = Chat(speeches).reply(messages, doc_ids)
        check_citations(speeches, reply)
        replies.append(reply)
        messages.append(ChatMessage("assistant", reply.content))
    return replies


def check_citations(speeches: Speeches, reply: ChatReply) -> None:
    """Every marker points at a citation, every citation is marked, each quote is located."""
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", reply.content)}
    assert markers == {c.index for c in reply.citations}, reply.content
    assert [c.index for c in reply.citations] == list(range(1, len(reply.citations) + 1))
    for c in reply.citations:
        source = speeches.get_document(c.doc_id).text
        assert source[c.start : c.end] == c.text and c.text.strip()
        assert c.text in source.split("\n")[c.paragraph - 1]
        assert c.doc_title and c.section_id
        if c.answer_start is not None:
            assert c.start <= c.answer_start < c.answer_end <= c.end  # type: ignore[operator]


def test_a_question_is_answered_with_the_span_and_its_sentence_cited(speeches: Speeches) -> None:
    (reply,) = converse(speeches, "改革任务要制定“时间表”和什么？")
    assert reply.intent == "ask" and reply.answerable
    bold = re.match(r"\*\*(.+?)\*\*\[1\]", reply.content)
    assert bold is not None and "作战图" in bold.group(1)
    (c,) = reply.citations
    assert c.doc_id == SEED_000 and c.paragraph == 18 and c.section_id == "3.2"
    assert "“时间表”“作战图”" in c.text
    assert seed_text(SEED_000)[c.answer_start : c.answer_end] == bold.group(1)
    assert c.doc_title == "县委十二届三次全会"
    assert "第 18 段" in reply.content


def test_a_question_the_speeches_do_not_answer_cites_nothing(speeches: Speeches) -> None:
    (reply,) = converse(speeches, "本县的县长是谁？")
    assert reply.intent == "ask" and not reply.answerable
    assert reply.content == NOT_FOUND_REPLY and reply.citations == []
    (narrowed,) = converse(speeches, "本县的县长是谁？", doc_ids=[SEED_002])
    assert narrowed.content == NOT_FOUND_SELECTED_REPLY and narrowed.citations == []


def test_an_elliptical_follow_up_takes_the_earlier_question_and_document(
    speeches: Speeches,
) -> None:
    first, follow = converse(speeches, "干部要做到什么？", "那党员呢？")
    assert first.doc_ids == (SEED_002,)
    assert follow.question == "党员要做到什么？"
    assert follow.answerable and follow.doc_ids == (SEED_002,)
    # The subject after a 的 has two readings; the one answered most confidently is taken.
    _, hospital = converse(speeches, "全市唯一的县级方舱医院建设情况如何？", "那高标准农田呢？")
    readings = {"高标准农田建设情况如何？", "高标准农田的县级方舱医院建设情况如何？"}
    assert hospital.question in readings and hospital.answerable
    assert hospital.citations[0].doc_id == SEED_002


def test_a_pronoun_is_resolved_to_the_previous_answer(speeches: Speeches) -> None:
    _, follow = converse(speeches, "县委的总体思路叫什么？", "它有什么要求？")
    assert follow.question is not None and follow.question.endswith("有什么要求？")
    assert "1515" in follow.question
    assert follow.doc_ids == (SEED_000,)


def test_section_requests_follow_the_document_in_focus(speeches: Speeches) -> None:
    asked, second, third, this = converse(
        speeches, "县委的总体思路叫什么？", "第二部分讲了什么？", "那第三部分呢？", "详细说说"
    )
    assert asked.doc_ids == (SEED_000,)
    assert second.intent == "summarize" and second.doc_ids == (SEED_000,)
    assert second.section_id == "2"
    assert "二、全面落实党的二十大和省市决策部署" in second.content
    assert {c.doc_id for c in second.citations} == {SEED_000}
    assert all(c.section_id.split(".")[0] == "2" for c in second.citations)
    assert third.section_id == "3" and third.doc_ids == (SEED_000,)
    assert this.intent == "summarize" and this.section_id == "3"
    assert len(this.citations) >= len(third.citations)


def test_a_section_request_without_context_covers_each_speech(speeches: Speeches) -> None:
    (reply,) = converse(speeches, "第二部分讲了什么？")
    assert reply.intent == "summarize"
    assert {c.doc_id for c in reply.citations} == {SEED_000, SEED_002}
    assert "《县委十二届三次全会》" in reply.content
    assert "第二，认清历史方位，把准前行方向" in reply.content


def test_nested_and_relative_section_references(speeches: Speeches) -> None:
    nested, following = converse(
        speeches, "第二部分的第二点讲了什么？", "下一点呢？", doc_ids=[SEED_002]
    )
    assert nested.section_id == "2.2" and following.section_id == "2.3"
    assert "三要在接续奋斗、实干笃行中推动发展" in following.content
    doc = seed_text(SEED_002)
    start = doc.index("三要在接续奋斗")
    assert all(c.start >= start for c in following.citations)
    _, marker = converse(speeches, "县委的总体思路叫什么？", "（三）讲了什么？")
    assert marker.section_id == "2.3" and "城乡一体化融合发展" in marker.content
    (closing,) = converse(speeches, "结尾讲了什么？", doc_ids=[SEED_002])
    assert closing.section_id == "closing"
    (missing,) = converse(speeches, "第九部分讲了什么？", doc_ids=[SEED_002])
    assert missing.intent == "outline" and "没有第九部分" in missing.content
    assert missing.citations == []


def test_list_the_sections(speeches: Speeches) -> None:
    (reply,) = converse(speeches, "这篇讲话有哪些部分？", doc_ids=[SEED_002])
    assert reply.intent == "outline" and reply.citations == []
    assert "分为 5 个部分" in reply.content
    for title in ("第一，牢记领袖嘱托", "第五，勇于自我革命", "一是全县上下要坚定站在一起"):
        assert title in reply.content
    first, other = converse(speeches, "第一篇讲话有哪些部分？", "那另一篇呢？")
    assert first.doc_ids == (SEED_000,) and other.doc_ids == (SEED_002,)


def test_summarise_a_whole_speech_and_a_topic(speeches: Speeches) -> None:
    (whole,) = converse(speeches, "总结一下这篇讲话", doc_ids=[SEED_000])
    assert whole.intent == "summarize" and "共 3 个部分" in whole.content
    assert {c.section_id for c in whole.citations} >= {"1", "2", "3"}
    _, other = converse(speeches, "总结一下第一篇讲话", "那另一篇呢？")
    assert other.intent == "summarize" and other.doc_ids == (SEED_002,)
    assert {c.section_id for c in other.citations} >= {"1", "5", "closing"}
    (topic,) = converse(speeches, "关于干部作风讲了什么？", doc_ids=[SEED_000])
    assert topic.intent == "summarize" and topic.section_id == "3.3"


def test_compare_speeches(speeches: Speeches) -> None:
    (plain,) = converse(speeches, "比较两篇讲话")
    assert plain.intent == "compare" and set(plain.doc_ids) == {SEED_000, SEED_002}
    assert {c.doc_id for c in plain.citations} == {SEED_000, SEED_002}
    (topic,) = converse(speeches, "两篇讲话在干部作风方面有什么不同？")
    assert topic.intent == "compare" and topic.question == "干部作风"
    assert topic.content.count("- 《") == 2
    (alone,) = converse(speeches, "比较一下", doc_ids=[SEED_000])
    assert alone.intent == "clarify" and alone.citations == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("你好", "smalltalk"),
        ("谢谢！", "smalltalk"),
        ("你能做什么？", "smalltalk"),
        ("？", "smalltalk"),
    ],
)
def test_small_talk_gets_a_short_reply(speeches: Speeches, text: str, kind: str) -> None:
    (reply,) = converse(speeches, text)
    assert reply.intent == kind and reply.citations == [] and reply.content


OPEN_WEBUI_TITLE = """### Task:
Generate a concise, 3-5 word title with an emoji summarizing the chat history.
### Guidelines:
- The title should clearly represent the main theme or subject of the conversation.
### Output:
JSON format: { "title": "your concise title here" }
### Chat History:
<chat_history>
USER: 县委的总体思路叫什么？
ASSISTANT: **“1515”总体思路**[1]
</chat_history>"""

OPEN_WEBUI_TAGS = """### Task:
Generate 1-3 broad tags categorizing the main themes of the chat history.
### Output:
JSON format: { "tags": ["tag1", "tag2", "tag3"] }
### Chat History:
<chat_history>
USER: 县委的总体思路叫什么？
</chat_history>"""

OPEN_WEBUI_FOLLOW_UPS = """### Task:
Suggest 3-5 relevant follow-up questions or prompts that the user might naturally ask next.
### Output:
JSON format: { "follow_ups": ["Question 1?", "Question 2?"] }
<chat_history>
USER: 县委的总体思路叫什么？
</chat_history>"""

NEXTCHAT_TOPIC = (
    "使用四到五个字直接返回这句话的简要主题，不要解释、不要标点、不要语气词、不要多余文本，"
    "不要加粗，如果没有主题，请直接返回“闲聊”"
)
NEXTCHAT_MEMORY = "简要总结一下对话内容，用作后续的上下文提示 prompt，控制在 200 字以内"
LIBRECHAT_TITLE = (
    "Please generate a concise, 5-word-or-less title for the conversation, using its same "
    'language, with no punctuation.\n\n||>User:\n"招商引资要牢树什么导向？"\n||>Response:\n'
    '"两个不能"\n\n||>Title:'
)


def test_front_end_housekeeping_prompts_are_answered(speeches: Speeches) -> None:
    (title,) = converse(speeches, OPEN_WEBUI_TITLE)
    assert title.intent == "housekeeping" and title.citations == []
    assert json.loads(title.content) == {"title": "县委的总体思路"}
    (tags,) = converse(speeches, OPEN_WEBUI_TAGS)
    assert isinstance(json.loads(tags.content)["tags"], list)
    (ups,) = converse(speeches, OPEN_WEBUI_FOLLOW_UPS)
    assert all(q.endswith("？") or q for q in json.loads(ups.content)["follow_ups"])
    _, _, topic = converse(speeches, "招商引资要牢树什么导向？", "那共同富裕呢？", NEXTCHAT_TOPIC)
    assert topic.intent == "housekeeping" and topic.content == "招商引资要牢树什么导向"
    (libre,) = converse(speeches, LIBRECHAT_TITLE)
    assert libre.intent == "housekeeping" and libre.content == "招商引资要牢树什么导向"
    memory = Chat(speeches).reply(
        [
            ChatMessage("user", "县委的总体思路叫什么？"),
            ChatMessage("assistant", "**“1515”总体思路**[1]"),
            ChatMessage("user", NEXTCHAT_MEMORY),
        ]
    )
    assert memory.intent == "housekeeping" and "县委的总体思路叫什么" in memory.content
    # A housekeeping prompt earlier in the conversation does not disturb the focus.
    *_, again = converse(speeches, "县委的总体思路叫什么？", OPEN_WEBUI_TITLE, "第二部分讲了什么？")
    assert again.doc_ids == (SEED_000,)


def test_questions_about_titles_are_not_mistaken_for_housekeeping(speeches: Speeches) -> None:
    (reply,) = converse(speeches, "第二部分的标题是什么？", doc_ids=[SEED_002])
    assert reply.intent != "housekeeping"


def test_bad_conversations_are_invalid_input(speeches: Speeches, tmp_path: Path) -> None:
    chat = Chat(speeches)
    with pytest.raises(InvalidInput):
        chat.reply([ChatMessage("system", "You are helpful.")])
    with pytest.raises(InvalidInput):
        chat.reply([ChatMessage("user", "   ")])
    with pytest.raises(InvalidInput):
        chat.reply([ChatMessage("user", "你好")], [])
    with pytest.raises(NotFound):
        chat.reply([ChatMessage("user", "你好")], ["no-such-doc"])
    with Speeches(Settings(data_dir=tmp_path / "empty")) as empty:
        reply = Chat(empty).reply([ChatMessage("user", "县委的总体思路叫什么？")])
    assert reply.intent == "clarify" and "还没有收录" in reply.content


def test_resolution_helpers() -> None:
    assert _subjects("招商引资要牢树什么导向？") == ("招商引资",)
    assert _subjects("县委的总体思路叫什么？") == ("县委", "县委的总体思路")
    assert _subjects("谁要坚定站在一起？") == ()
    assert _subjects("全市唯一的县级方舱医院建设情况如何？") == (
        "全市唯一",
        "全市唯一的县级方舱医院",
    )
    assert _substitute("干部要做到什么？", ("干部",), "党员") == ["党员要做到什么？"]
    assert _substitute("谁要坚定站在一起？", (), "党员") == ["党员，谁要坚定站在一起？"]
    ref = _section_reference("第二部分的第三点讲了什么")
    assert ref is not None and ref.path == (2, 3)
    ref = _section_reference("第十二个方面")
    assert ref is not None and ref.path == (12,) and not ref.sub_only
    ref = _section_reference("第3点呢")
    assert ref is not None and ref.path == (3,) and ref.sub_only
    ref = _section_reference("(二)讲了什么")
    assert ref is not None and ref.marker == "（二）"
    assert _section_reference("县委的总体思路叫什么？") is None


def test_markers_in_quoted_or_typed_text_cannot_pose_as_citations(
    speeches: Speeches, tmp_path: Path
) -> None:
    text = "同志们：\n一、抓好防汛[1]工作\n要在汛前完成12座水库的除险加固[2]，确保安全度汛。\n"
    with Speeches(Settings(data_dir=tmp_path / "data")) as s:
        s.put_document(text, doc_id="flood")
        (reply,) = converse(s, "要在汛前完成多少座水库的除险加固？")
        assert reply.answerable and "［2］" in reply.content
        (outline,) = converse(s, "有哪些部分？[3]")
        assert "抓好防汛［1］工作" in outline.content
    (long,) = converse(speeches, "问" * 3000)
    assert long.intent == "clarify" and "太长" in long.content
