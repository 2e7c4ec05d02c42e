"""Conversation over the speeches: resolve the last turn, route it, compose a cited reply.

A chat front end sends the whole conversation each time, so nothing is kept between requests:
the earlier user turns are replayed (cheaply; the answerer is extractive) to rebuild what the
conversation is about — the document and section in focus, the last question and its subject —
and the last user turn is resolved against that:

* ``那党员呢？`` after ``干部要做到什么？`` becomes ``党员要做到什么？`` (the new subject put in
  place of the old one), asked in the document the previous answer came from first;
* ``第二部分讲了什么？`` / ``总结一下这部分`` / ``那第三部分呢？`` summarise a section of the
  document in focus; ``有哪些部分？`` lists its outline; ``比较两篇讲话`` puts the speeches side by
  side; ``你好`` and a front end's own title / tag / follow-up prompts get a short reply.

Replies are text with inline markers ``[1]``, ``[2]`` and the list of citations they point at:
every quoted sentence is copied from a speech and located (document, section, paragraph, offsets).
When the speeches do not hold the answer the reply says so and cites nothing. Nothing here knows
HTTP; the OpenAI-compatible routes are a thin layer over :meth:`Chat.reply`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from embeddings.tokens import words as jieba_words
from service.core import AskResult, Speeches
from service.errors import InvalidInput, NotFound, ServiceError

log = logging.getLogger(__name__)

# How many earlier user turns are replayed to rebuild the conversation's focus.
MAX_REPLAYED_TURNS = 6
# Beyond this many speeches in scope, an ambiguous "第二部分" asks which speech is meant.
MAX_DOCS_SIDE_BY_SIDE = 3
SECTION_SUMMARY_SENTENCES = 5
SECTION_SUMMARY_CHARS = 600

NOT_FOUND_REPLY = "这些讲话中没有找到这个问题的答案。"
NOT_FOUND_SELECTED_REPLY = "所选的讲话中没有找到这个问题的答案。"


# -- results ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str  # system | developer | user | assistant | tool
    content: str


@dataclass(frozen=True, slots=True)
class Citation:
    """What a marker ``[index]`` points at: a quoted sentence and where it stands."""

    index: int
    doc_id: str
    doc_title: str
    section_id: str
    section_title: str
    paragraph: int  # 1-based line of the source text
    start: int  # offsets of ``text`` in the document's text
    end: int
    text: str  # the quoted text, copied from the speech
    answer_start: int | None = None  # the answer span inside ``text``'s range, when there is one
    answer_end: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "doc_id": self.doc_id,
            "doc_title": self.doc_title,
            "section_id": self.section_id,
            "section_title": self.section_title,
            "paragraph": self.paragraph,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "answer_start": self.answer_start,
            "answer_end": self.answer_end,
        }


@dataclass(frozen=True, slots=True)
class ChatReply:
    content: str
    citations: list[Citation]
    intent: str  # ask | summarize | outline | compare | smalltalk | housekeeping | clarify
    answerable: bool = True
    question: str | None = None  # the resolved question or topic, when one was asked
    doc_ids: tuple[str, ...] = ()  # the speeches the reply draws on
    section_id: str | None = None  # the section in focus afterwards
    subjects: tuple[str, ...] = ()  # the resolved question's subject, carried to follow-ups
    answer: str | None = None
    confidence: float = 0.0

    def meta(self) -> dict[str, Any]:
        return {
            "intent": self.intent,
            "answerable": self.answerable,
            "question": self.question,
            "doc_ids": list(self.doc_ids),
            "section_id": self.section_id,
        }


@dataclass(slots=True)
class _State:
    """What the conversation is about after the turns replayed so far."""

    doc_id: str | None = None
    section_id: str | None = None
    question: str | None = None
    subjects: tuple[str, ...] = ()
    answer: str | None = None
    intent: str | None = None
    doc_ids: tuple[str, ...] = ()

    def update(self, reply: ChatReply) -> None:
        if reply.intent in ("smalltalk", "housekeeping", "clarify"):
            return
        self.intent = reply.intent
        if reply.doc_ids:
            self.doc_ids = reply.doc_ids
            self.doc_id = reply.doc_ids[0] if len(reply.doc_ids) == 1 else self.doc_id
        if reply.section_id is not None or len(reply.doc_ids) == 1:
            self.section_id = reply.section_id
        if reply.intent == "ask":
            self.question = reply.question
            self.subjects = reply.subjects
            self.answer = reply.answer


@dataclass(slots=True)
class _Builder:
    """Accumulates reply text and the citations its markers point at, numbered in order."""

    chat: Chat
    parts: list[str] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)

    def cite(
        self,
        doc_id: str,
        start: int,
        end: int,
        paragraph: int,
        *,
        answer: tuple[int, int] | None = None,
    ) -> str:
        doc = self.chat.document(doc_id)
        for c in self.citations:
            if c.doc_id == doc_id and c.start == start and c.end == end:
                return _marker(c.index)
        section = _deepest_section(doc.sections, start)
        citation = Citation(
            index=len(self.citations) + 1,
            doc_id=doc_id,
            doc_title=self.chat.label(doc_id),
            section_id=section["id"] if section else "",
            section_title=section["title"] if section else "",
            paragraph=paragraph,
            start=start,
            end=end,
            text=doc.text[start:end],
            answer_start=answer[0] if answer else None,
            answer_end=answer[1] if answer else None,
        )
        self.citations.append(citation)
        return _marker(citation.index)

    @property
    def content(self) -> str:
        """The text with its markers; a ``[n]`` quoted from a speech is shown as ``［n］``."""
        text = re.sub(r"\[(\d+)\]", r"［\1］", "".join(self.parts))
        return re.sub("\x00(\\d+)\x00", r"[\1]", text).strip()


def _marker(index: int) -> str:
    """A placeholder for ``[index]`` that no quoted text can contain (control characters)."""
    return f"\x00{index}\x00"


# -- the conversation ------------------------------------------------------------------------
class Chat:
    """Answers the last user turn of a conversation over ``speeches``."""

    def __init__(self, speeches: Speeches, *, max_replayed_turns: int = MAX_REPLAYED_TURNS):
        self.speeches = speeches
        self.max_replayed_turns = max_replayed_turns
        self._docs: dict[str, Any] = {}
        self._labels: dict[str, str] = {}

    # -- documents --------------------------------------------------------------------------
    def document(self, doc_id: str) -> Any:
        if doc_id not in self._docs:
            self._docs[doc_id] = self.speeches.get_document(doc_id)
        return self._docs[doc_id]

    def label(self, doc_id: str) -> str:
        """A readable name: the title, or when the title is only the id, the opening words."""
        if doc_id not in self._labels:
            doc = self.document(doc_id)
            self._labels[doc_id] = document_label(doc.id, doc.title, doc.sections)
        return self._labels[doc_id]

    def scope(self, doc_ids: Sequence[str] | None) -> list[str]:
        """The speeches a reply may use: ``doc_ids`` (checked, deduplicated) or all of them."""
        if doc_ids is None:
            return [d["id"] for d in self.speeches.list_documents()]
        if not doc_ids:
            raise InvalidInput("doc_ids is empty; leave it out to use every speech")
        wanted = list(dict.fromkeys(doc_ids))
        known = self.speeches.store.existing_ids(wanted)
        missing = [d for d in wanted if d not in known]
        if missing:
            raise NotFound(f"no document with id {missing[0]!r}")
        return wanted

    # -- entry point ------------------------------------------------------------------------
    def reply(
        self, messages: Sequence[ChatMessage], doc_ids: Sequence[str] | None = None
    ) -> ChatReply:
        scope = self.scope(doc_ids)
        users = [m.content.strip() for m in messages if m.role == "user" and m.content.strip()]
        if not users:
            raise InvalidInput("the messages hold no user message with text")
        last = users[-1]
        task = _housekeeping_kind(last)
        if task is not None:
            return self._housekeeping(task, last, users[:-1], scope)
        if not scope:
            return ChatReply(
                "还没有收录任何讲话。请先通过 POST /v1/documents 或 `speechqa ingest` 添加讲话。",
                [],
                "clarify",
                answerable=False,
            )

        state = _State()
        for earlier in users[:-1][-self.max_replayed_turns :]:
            if _housekeeping_kind(earlier) is not None:
                continue
            try:
                state.update(self._turn(earlier, state, scope))
            except ServiceError as exc:  # an earlier turn that failed leaves the focus as it was
                log.debug("replayed turn %r failed: %s", earlier, exc)
        return self._turn(last, state, scope)

    # -- one turn ---------------------------------------------------------------------------
    def _turn(self, text: str, state: _State, scope: list[str]) -> ChatReply:
        text = _normalize(text)
        limit = self.speeches.settings.max_query_chars
        if len(text) > limit:
            return ChatReply(
                f"这段话有 {len(text)} 个字，太长了；请把问题精简到 {limit} 字以内。",
                [],
                "clarify",
                answerable=False,
            )
        if state.doc_id is not None and state.doc_id not in scope:
            state = _State()
        kind = _small_talk_kind(text)
        if kind is not None:
            return self._small_talk(kind, scope)

        docs = _doc_reference(text, state, scope, self)
        section = _section_reference(text)
        topic = _topic(text)
        ellipsis = _ellipsis(text)

        if _DETAIL.search(text) and state.section_id is not None:
            doc = state.doc_id or (scope[0] if len(scope) == 1 else None)
            if doc is not None:
                return self._summarize(doc, state.section_id, more=True)
        if _COMPARE.search(text):
            return self._compare(docs or scope, topic)
        if _OUTLINE.search(text) and not topic:
            return self._for_documents(docs, state, scope, lambda d: self._outline(d))
        if section is not None and (_SUMMARY.search(text) or not topic or ellipsis is not None):
            return self._for_documents(
                docs, state, scope, lambda d: self._summarize_ref(d, section, state)
            )
        if (_SUMMARY.search(text) or _OUTLINE.search(text)) and not topic:
            if state.section_id is not None and _THIS_SECTION.search(text):
                return self._summarize(state.doc_id or scope[0], state.section_id)
            return self._for_documents(docs, state, scope, lambda d: self._overview(d))
        if ellipsis is not None and docs and not _topic(ellipsis):
            # "那另一篇呢？": the last request again, on the other speech.
            if state.intent in ("summarize", "outline") and state.section_id is not None:
                return self._for_documents(
                    docs, state, scope, lambda d: self._summarize_or_outline(d, state.section_id)
                )
            if state.intent == "outline":
                return self._for_documents(docs, state, scope, lambda d: self._outline(d))
            if state.intent == "summarize":
                return self._for_documents(docs, state, scope, lambda d: self._overview(d))
            if state.question is not None:
                return self._ask(state.question, docs, scope, subjects=state.subjects)
        if _SUMMARY.search(text) and topic:
            return self._summarize_topic(topic, docs or _focus(state, scope), scope)
        return self._ask_resolved(text, ellipsis, docs, state, scope)

    # -- ask --------------------------------------------------------------------------------
    def _ask_resolved(
        self,
        text: str,
        ellipsis: str | None,
        docs: list[str] | None,
        state: _State,
        scope: list[str],
    ) -> ChatReply:
        questions = [text]
        preferred = docs
        if ellipsis is not None and state.question is not None:
            questions = _substitute(state.question, state.subjects, ellipsis)
            preferred = docs or _focus(state, scope, strict=True)
        elif _PRONOUN.search(text) and (state.answer or state.subjects):
            short = state.answer if state.answer and len(state.answer) <= 20 else None
            carried = short or (state.subjects[-1] if state.subjects else "")
            questions = [_PRONOUN.sub(carried, text, count=1)]
            preferred = docs or _focus(state, scope, strict=True)
        elif _THIS_DOC.search(text):
            preferred = docs or _focus(state, scope, strict=True)
        reply = self._best(questions, preferred, scope)
        if not reply.answerable and preferred and not docs and set(preferred) != set(scope):
            # The follow-up's answer may stand in another speech.
            reply = self._best(questions, None, scope)
        return reply

    def _best(
        self, questions: list[str], docs: Sequence[str] | None, scope: list[str]
    ) -> ChatReply:
        """The most confident answer among readings of the turn; the first reading on a tie."""
        best: ChatReply | None = None
        for question in questions:
            reply = self._ask(question, docs, scope, subjects=_subjects(question))
            if best is None or (reply.answerable, reply.confidence) > (
                best.answerable,
                best.confidence,
            ):
                best = reply
        assert best is not None
        return best

    def _ask(
        self,
        question: str,
        docs: Sequence[str] | None,
        scope: list[str],
        *,
        subjects: tuple[str, ...],
    ) -> ChatReply:
        within = list(docs) if docs else scope
        try:
            result = self.speeches.ask(question, 5, within)
        except InvalidInput as exc:
            return ChatReply(f"无法处理这个问题：{exc.message}", [], "clarify", answerable=False)
        if not result.answerable:
            all_docs = len(within) == len(self.speeches.list_documents())
            return ChatReply(
                NOT_FOUND_REPLY if all_docs else NOT_FOUND_SELECTED_REPLY,
                [],
                "ask",
                answerable=False,
                question=question,
                doc_ids=tuple(within) if len(within) == 1 else (),
                subjects=subjects,
                confidence=result.confidence,
            )
        return self._compose_answer(result, question, subjects)

    def _compose_answer(
        self, result: AskResult, question: str, subjects: tuple[str, ...]
    ) -> ChatReply:
        assert result.located is not None and result.sentence is not None
        b = _Builder(self)
        sentence = result.sentence
        marker = b.cite(
            sentence.doc_id,
            sentence.start,
            sentence.end,
            sentence.paragraph,
            answer=(result.located.start, result.located.end),
        )
        answer = result.answer.strip()
        b.add(f"**{answer}**{marker}\n\n")
        if sentence.text.strip() != answer:
            b.add(f"> {sentence.text.strip()}\n\n")
        c = b.citations[0]
        where = f"《{c.doc_title}》"
        if c.section_id:
            where += _section_name(self.document(c.doc_id).sections, c.section_id, deepest=True)
        b.add(f"—— {where}，第 {c.paragraph} 段")
        holder = result.citations[0]
        return ChatReply(
            b.content,
            b.citations,
            "ask",
            question=question,
            doc_ids=(holder.doc_id,),
            section_id=holder.section_id,
            subjects=subjects,
            answer=answer,
            confidence=result.confidence,
        )

    # -- summaries and outlines -------------------------------------------------------------
    def _for_documents(
        self,
        docs: list[str] | None,
        state: _State,
        scope: list[str],
        one: Any,
    ) -> ChatReply:
        """Apply ``one`` to the speech meant: named, in focus, the only one, or each of a few."""
        targets = docs or _focus(state, scope)
        if len(targets) == 1:
            return one(targets[0])
        if len(targets) > MAX_DOCS_SIDE_BY_SIDE:
            names = "\n".join(f"{i}. 《{self.label(d)}》" for i, d in enumerate(targets, 1))
            return ChatReply(
                f"共有 {len(targets)} 篇讲话，请说明是哪一篇（例如“第一篇”）或在页面上选择：\n\n"
                f"{names}",
                [],
                "clarify",
            )
        replies = [one(d) for d in targets]
        return _merge(replies, self)

    def _summarize_ref(self, doc_id: str, ref: _SectionRef, state: _State) -> ChatReply:
        sections = self.document(doc_id).sections
        current = state.section_id if state.doc_id in (doc_id, None) else None
        section_id = _resolve_section(sections, ref, current)
        if section_id is None:
            b = _Builder(self)
            b.add(f"《{self.label(doc_id)}》没有{ref.text}。它的结构是：\n\n")
            b.add(_outline_lines(sections))
            return ChatReply(b.content, [], "outline", doc_ids=(doc_id,), section_id=None)
        return self._summarize(doc_id, section_id)

    def _summarize_or_outline(self, doc_id: str, section_id: str) -> ChatReply:
        if _find_section(self.document(doc_id).sections, section_id) is None:
            return self._outline(doc_id)
        return self._summarize(doc_id, section_id)

    def _summarize(self, doc_id: str, section_id: str, *, more: bool = False) -> ChatReply:
        doc = self.document(doc_id)
        factor = 2 if more else 1
        (summary,) = self.speeches.summarize(
            doc_id,
            section_id,
            max_sentences=SECTION_SUMMARY_SENTENCES * factor,
            max_chars=SECTION_SUMMARY_CHARS * factor,
        )
        b = _Builder(self)
        b.add(f"《{self.label(doc_id)}》{_section_name(doc.sections, section_id)}：\n\n")
        if not summary.sentences:
            b.add("这一部分没有可摘录的句子。")
        for s in summary.sentences:
            marker = b.cite(doc_id, s.start, s.end, s.paragraph)
            b.add(f"- {s.text.strip()}{'……' if s.trimmed else ''}{marker}\n")
        return ChatReply(
            b.content, b.citations, "summarize", doc_ids=(doc_id,), section_id=section_id
        )

    def _summarize_topic(self, topic: str, docs: list[str], scope: list[str]) -> ChatReply:
        """``关于招商引资讲了什么``: the section holding the best passage on the topic."""
        try:
            hits = self.speeches.search(topic, 1, docs or scope)
        except InvalidInput:
            hits = []
        if not hits:
            return self._ask(topic, docs, scope, subjects=())
        reply = self._summarize(hits[0].doc_id, hits[0].section_id)
        return replace(reply, question=topic)

    def _overview(self, doc_id: str) -> ChatReply:
        """A whole speech: the opening sentence of each top-level part."""
        doc = self.document(doc_id)
        summaries = self.speeches.summarize(doc_id, max_sentences=1)
        numbered = sum(1 for s in doc.sections if s.get("number") is not None)
        b = _Builder(self)
        head = f"《{self.label(doc_id)}》"
        b.add(f"{head}共 {numbered} 个部分，各部分要点：\n\n" if numbered else f"{head}要点：\n\n")
        for summary in summaries:
            for s in summary.sentences[:1]:
                marker = b.cite(doc_id, s.start, s.end, s.paragraph)
                b.add(f"- {s.text.strip()}{'……' if s.trimmed else ''}{marker}\n")
        return ChatReply(b.content, b.citations, "summarize", doc_ids=(doc_id,), section_id=None)

    def _outline(self, doc_id: str) -> ChatReply:
        sections = self.document(doc_id).sections
        numbered = sum(1 for s in sections if s.get("number") is not None)
        b = _Builder(self)
        b.add(f"《{self.label(doc_id)}》分为 {numbered} 个部分：\n\n" if numbered else "")
        b.add(_outline_lines(sections))
        return ChatReply(b.content, [], "outline", doc_ids=(doc_id,), section_id=None)

    def _compare(self, docs: list[str], topic: str) -> ChatReply:
        if len(docs) < 2:
            name = f"《{self.label(docs[0])}》" if docs else "一篇讲话"
            return ChatReply(
                f"比较需要至少两篇讲话，当前只选了{name}。", [], "clarify", answerable=False
            )
        if not topic:
            reply = _merge([self._overview(d) for d in docs[:MAX_DOCS_SIDE_BY_SIDE]], self)
            return replace(reply, intent="compare")
        b = _Builder(self)
        b.add(f"各篇讲话关于“{topic}”：\n\n")
        found = False
        for d in docs[:MAX_DOCS_SIDE_BY_SIDE]:
            try:
                result = self.speeches.ask(topic, 5, [d])
            except InvalidInput:
                result = None
            if result is not None and result.answerable and result.sentence is not None:
                s = result.sentence
                marker = b.cite(d, s.start, s.end, s.paragraph)
                b.add(f"- 《{self.label(d)}》：{s.text.strip()}{marker}\n")
                found = True
            else:
                b.add(f"- 《{self.label(d)}》：没有找到直接谈到这一点的内容。\n")
        return ChatReply(
            b.content,
            b.citations,
            "compare",
            answerable=found,
            question=topic,
            doc_ids=tuple(docs[:MAX_DOCS_SIDE_BY_SIDE]),
        )

    # -- everything that is not a question about the speeches -------------------------------
    def _small_talk(self, kind: str, scope: list[str]) -> ChatReply:
        if kind == "thanks":
            text = "不客气。还想了解这些讲话的哪方面？"
        elif kind == "bye":
            text = "再见。"
        else:
            names = "、".join(f"《{self.label(d)}》" for d in scope[:3])
            more = f"等 {len(scope)} 篇" if len(scope) > 3 else f"这 {len(scope)} 篇"
            text = (
                f"你好！我根据已收录的讲话回答问题（{names}{more}），答案都摘自原文并标注出处"
                "；讲话里没有的，我会直说。\n\n可以这样问：\n"
                "- 县委的总体思路叫什么？\n- 这篇讲话有哪些部分？\n"
                "- 第二部分讲了什么？\n- 比较两篇讲话"
            )
        return ChatReply(text, [], "smalltalk")

    def _housekeeping(
        self, kind: str, prompt: str, earlier: list[str], scope: list[str]
    ) -> ChatReply:
        history = _history_questions(prompt) or [
            u for u in earlier if _housekeeping_kind(u) is None
        ]
        first = history[0] if history else ""
        wants_json = bool(re.search(r"json", prompt, re.I)) or "{" in prompt
        if kind == "title":
            title = _make_title(first)
            text = json.dumps({"title": title}, ensure_ascii=False) if wants_json else title
        elif kind == "tags":
            tags = ["讲话", "问答"]
            text = json.dumps({"tags": tags}, ensure_ascii=False) if wants_json else "、".join(tags)
        elif kind == "follow_ups":
            ups = ["这篇讲话有哪些部分？", "第一部分讲了什么？", "比较两篇讲话"]
            text = json.dumps({"follow_ups": ups}, ensure_ascii=False)
        elif kind == "queries":
            text = json.dumps({"queries": []}, ensure_ascii=False)
        elif kind == "autocomplete":
            text = json.dumps({"text": ""}, ensure_ascii=False)
        elif kind == "emoji":
            text = "📄"
        elif kind == "memory":
            asked = "；".join(h.rstrip("？?。") for h in history[-5:])
            text = f"用户询问了讲话中的：{asked}。" if asked else "用户尚未提问。"
            text = text[:200]
        else:
            key = _json_key(prompt)
            text = json.dumps({key: ""}, ensure_ascii=False) if key else "好的。"
        return ChatReply(text, [], "housekeeping")


# -- helpers: documents and sections ---------------------------------------------------------
def document_label(doc_id: str, title: str, sections: list[dict[str, Any]]) -> str:
    """The title, or (for a title that is only the id) the opening words of the preamble."""
    if title and title != doc_id:
        return title
    for s in sections:
        if s.get("kind") == "preamble" and s.get("title"):
            words = s["title"]
            return words if len(words) <= 18 else words[:16] + "…"
    return doc_id


def _walk(sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in sections:
        out.append(s)
        out.extend(_walk(s.get("children", [])))
    return out


def _find_section(sections: list[dict[str, Any]], section_id: str) -> dict[str, Any] | None:
    return next((s for s in _walk(sections) if s["id"] == section_id), None)


def _deepest_section(sections: list[dict[str, Any]], offset: int) -> dict[str, Any] | None:
    best = None
    for s in _walk(sections):
        if s["start"] <= offset < s["end"] and (best is None or s["level"] >= best["level"]):
            best = s
    return best


def _section_name(sections: list[dict[str, Any]], section_id: str, *, deepest: bool = False) -> str:
    """``二、认清历史方位…`` or ``开头部分`` / ``结尾部分``; nested ones after their parent."""
    path = []
    parts = section_id.split(".")
    for i in range(len(parts) if deepest else 1, len(parts) + 1):
        s = _find_section(sections, ".".join(parts[:i]))
        if s is not None:
            path.append(s)
    if not path:
        return ""
    names = []
    for s in path:
        if s["kind"] == "preamble":
            names.append("开头部分")
        elif s["kind"] == "closing":
            names.append("结尾部分")
        else:
            names.append(f"{s.get('marker') or ''}{s['title']}")
    return " › ".join(names)


def _outline_lines(sections: list[dict[str, Any]]) -> str:
    lines = []
    for s in sections:
        if s["kind"] == "preamble":
            lines.append(f"- 开头：{s['title']}")
        elif s["kind"] == "closing":
            lines.append(f"- 结尾：{s['title']}")
        else:
            lines.append(f"- {s.get('marker') or ''}{s['title']}")
        for c in s.get("children", []):
            lines.append(f"  - {c.get('marker') or ''}{c['title']}")
    return "\n".join(lines)


def _merge(replies: list[ChatReply], chat: Chat) -> ChatReply:
    """Several speeches' replies in one, citations renumbered in order."""
    b = _Builder(chat)
    for reply in replies:
        mapping: dict[int, str] = {}
        for c in reply.citations:
            mapping[c.index] = b.cite(
                c.doc_id,
                c.start,
                c.end,
                c.paragraph,
                answer=(c.answer_start, c.answer_end) if c.answer_start is not None else None,
            )
        b.add(_renumber(reply.content, mapping) + "\n\n")
    docs = tuple(d for r in replies for d in r.doc_ids)
    intent = replies[0].intent if replies else "summarize"
    return ChatReply(b.content, b.citations, intent, doc_ids=docs, section_id=None)


def _renumber(text: str, mapping: dict[int, str]) -> str:
    return re.sub(r"\[(\d+)\]", lambda m: mapping.get(int(m.group(1)), m.group(0)), text)


def _focus(state: _State, scope: list[str], *, strict: bool = False) -> list[str]:
    """The speech in focus: the conversation's, else the only one, else (not strict) all."""
    if state.doc_id is not None and state.doc_id in scope:
        return [state.doc_id]
    if len(scope) == 1 or strict:
        return scope[:1] if len(scope) == 1 else []
    return scope


# -- helpers: understanding the turn ---------------------------------------------------------
_CN_NUM = "零〇一二两三四五六七八九十百"
_NUM = rf"[{_CN_NUM}\d０-９]{{1,4}}"
_CN_VALUE = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_CN_VALUE |= {"六": 6, "七": 7, "八": 8, "九": 9}


def _number(text: str) -> int | None:
    text = text.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    if text.isdigit():
        return int(text)
    total, current = 0, 0
    for ch in text:
        if ch in _CN_VALUE:
            current = _CN_VALUE[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return None
    return total + current or None


_TOP_UNIT = r"(?:大)?(?:部分|章|节|板块|篇章|大点|个方面|方面|大方面|大块|块)"
_SUB_UNIT = r"(?:个)?(?:小点|点|条|项|小节|个要点|要点)"


@dataclass(frozen=True, slots=True)
class _SectionRef:
    text: str  # as the user wrote it, for messages
    path: tuple[int, ...] = ()  # ordinals, top level first
    sub_only: bool = False  # only a point number (第三点): inside the section in focus if any
    marker: str | None = None  # （二） / 二、 as written
    special: str | None = None  # preamble | closing | last | next | previous | current


_SECTION_PATTERNS = (
    (
        "path",
        re.compile(
            rf"第\s*({_NUM})\s*(?:个)?\s*{_TOP_UNIT}\s*(?:的|中的|里的|中|里)?\s*"
            rf"第\s*({_NUM})\s*{_SUB_UNIT}"
        ),
    ),
    ("top", re.compile(rf"第\s*({_NUM})\s*(?:个)?\s*{_TOP_UNIT}")),
    ("sub", re.compile(rf"第\s*({_NUM})\s*{_SUB_UNIT}")),
    (
        "marker",
        re.compile(rf"([（(]\s*[{_CN_NUM}]{{1,3}}\s*[）)]|(?<![{_CN_NUM}])[{_CN_NUM}]{{1,3}}、)"),
    ),
    ("preamble", re.compile(r"开头|开场白|开篇|前言|导语|引言|序言|第一段之前")),
    ("closing", re.compile(r"结尾|结束语|结语|收尾|最后一段")),
    ("last", re.compile(rf"最后(?:一)?(?:个)?{_TOP_UNIT}")),
    ("next", re.compile(rf"下(?:一)?(?:个)?{_TOP_UNIT}|下(?:一)?{_SUB_UNIT}|接下来")),
    ("previous", re.compile(rf"上(?:一)?(?:个)?{_TOP_UNIT}|前(?:一)?(?:个)?{_TOP_UNIT}")),
    ("current", re.compile(rf"(?:这|该|本|此)(?:一)?(?:个)?(?:{_TOP_UNIT}|{_SUB_UNIT})")),
)


def _section_reference(text: str) -> _SectionRef | None:
    for kind, pattern in _SECTION_PATTERNS:
        m = pattern.search(text)
        if m is None:
            continue
        if kind == "path":
            a, b = _number(m.group(1)), _number(m.group(2))
            if a and b:
                return _SectionRef(m.group(0), (a, b))
        elif kind in ("top", "sub"):
            n = _number(m.group(1))
            if n:
                return _SectionRef(m.group(0), (n,), sub_only=kind == "sub")
        elif kind == "marker":
            marker = re.sub(r"\s", "", m.group(1)).replace("(", "（").replace(")", "）")
            return _SectionRef(m.group(0), marker=marker)
        else:
            return _SectionRef(m.group(0), special=kind)
    return None


def _resolve_section(
    sections: list[dict[str, Any]], ref: _SectionRef, current: str | None
) -> str | None:
    top = [s for s in sections if s.get("number") is not None]
    if ref.special == "preamble":
        return next((s["id"] for s in sections if s["kind"] == "preamble"), None)
    if ref.special == "closing":
        return next((s["id"] for s in sections if s["kind"] == "closing"), None)
    if ref.special == "last":
        return top[-1]["id"] if top else None
    if ref.special == "current":
        return current
    if ref.special in ("next", "previous"):
        if current is None:
            return top[0]["id"] if ref.special == "next" and top else None
        node = _find_section(sections, current)
        siblings = _siblings(sections, current)
        if node is None or node not in siblings:
            return None
        i = siblings.index(node) + (1 if ref.special == "next" else -1)
        return siblings[i]["id"] if 0 <= i < len(siblings) else None
    if ref.marker is not None:
        matches = [s for s in _walk(sections) if s.get("marker") == ref.marker]
        if current is not None:
            head = current.split(".")[0]
            inside = [s for s in matches if s["id"].split(".")[0] == head]
            matches = inside or matches
        return matches[0]["id"] if matches else None
    if ref.sub_only and current is not None:
        parent = _find_section(sections, current.split(".")[0])
        if parent is not None:
            child = next(
                (c for c in parent.get("children", []) if c.get("number") == ref.path[0]), None
            )
            if child is not None:
                return child["id"]
    node: dict[str, Any] | None = None
    level: list[dict[str, Any]] = top
    for n in ref.path:
        node = next((s for s in level if s.get("number") == n), None)
        if node is None:
            return None
        level = node.get("children", [])
    return node["id"] if node is not None else None


def _siblings(sections: list[dict[str, Any]], section_id: str) -> list[dict[str, Any]]:
    if "." not in section_id:
        return list(sections)
    parent = _find_section(sections, section_id.rsplit(".", 1)[0])
    return list(parent.get("children", [])) if parent else []


_ORDINAL_DOC = re.compile(rf"第\s*({_NUM})\s*(?:篇|份|个讲话|次讲话|个文件)")
_OTHER_DOC = re.compile(r"另(?:外)?(?:一)?(?:篇|份|个讲话)")
_THIS_DOC = re.compile(
    r"这篇|这份|该讲话|本讲话|这个讲话|这次讲话|这个报告|本篇|上一篇|刚才那篇|文中|讲话中|讲话里"
)
_ALL_DOCS = re.compile(r"[两二三几各每](?:篇|份)|所有(?:的)?讲话|全部(?:的)?讲话|这些讲话")


def _doc_reference(text: str, state: _State, scope: list[str], chat: Chat) -> list[str] | None:
    """The speeches the turn names, if it names any."""
    m = _ORDINAL_DOC.search(text)
    if m:
        n = _number(m.group(1))
        if n and 1 <= n <= len(scope):
            return [scope[n - 1]]
    if _OTHER_DOC.search(text):
        others = [d for d in scope if d != state.doc_id]
        if state.doc_id is not None and others:
            return others[:1]
    for d in scope:
        if d in text:
            return [d]
        title = chat.document(d).title
        if title and title != d and len(title) >= 4 and title in text:
            return [d]
    if _ALL_DOCS.search(text):
        return list(scope)
    if _THIS_DOC.search(text) and state.doc_id in scope:
        return [state.doc_id]  # type: ignore[list-item]
    return None


_SUMMARY = re.compile(
    r"总结|概括|归纳|摘要|小结|梳理|提炼|主要内容|大意|要点|核心内容|核心思想|主旨|中心思想|概述|"
    r"简述|讲了(?:些)?(?:什么|啥|哪些)|讲的(?:是)?(?:什么|啥)|讲什么|说了(?:些)?(?:什么|啥|哪些)|"
    r"说的(?:是)?什么|谈了(?:些)?(?:什么|哪些)|谈到了?(?:什么|哪些)|主要讲|内容是什么|内容有哪些|"
    r"讲了哪些|介绍一下"
)
_OUTLINE = re.compile(
    r"提纲|大纲|目录|框架|结构|章节|小标题|各部分|有哪些部分|哪几部分|哪几个部分|几部分|几个部分|"
    r"分为几|分成几|哪些方面|哪几个方面|几个方面|列出.{0,6}(?:部分|标题|章节)"
)
_COMPARE = re.compile(
    r"比较|对比|异同|区别|不同之处|有何不同|有什么不同|有哪些不同|相同点|共同点|差异|相比"
)
_DETAIL = re.compile(
    r"^(?:请)?(?:再)?(?:详细|具体|展开|多)(?:一点|一些|些)?(?:说说|讲讲|谈谈|介绍|说明|说|讲)?"
    r"(?:一下)?[。！？?!]*$|^还有(?:吗|呢|别的吗|其他的吗)[。！？?!]*$|^继续[。！？?!]*$|^更多[。！？?!]*$"
)
_THIS_SECTION = re.compile(rf"(?:这|该|本|此)(?:一)?(?:个)?(?:{_TOP_UNIT}|{_SUB_UNIT})")
_PRONOUN = re.compile(r"它们|它|这个(?!讲话|报告)|这些(?!讲话|报告)|这一点|上述|前者|后者")

# What is left after removing the request's own words is the topic, if anything (jieba tokens).
_FILLER = frozenset(
    (
        "请 帮 帮我 帮忙 给 给我 麻烦 能否 可以 能 能不能 一下 一篇 讲话 报告 文章 "
        "这篇 那篇 这份 该 本篇 全文 整篇 内容 主要 分别 各自 各 都 的 了 吗 呢 "
        "吧 啊 呀 和 与 跟 及 以及 在 上 中 里 里面 方面 关于 有关 对于 有 有没有 "
        "什么 哪些 几个 是 讲 说 谈 篇 份 两 所有 全部 这些 这 那 那么 它 其 之间 "
        "看看 看 想 知道 我 你 我们 下 个 点 部分 就 又 还 再 也 一 如何 怎么 怎样 "
        "怎么样 之 各篇 "
    ).split()
)


def _topic(text: str) -> str:
    rest = text
    patterns = [_SUMMARY, _OUTLINE, _COMPARE, _ORDINAL_DOC, _OTHER_DOC, _ALL_DOCS, _THIS_DOC]
    patterns += [p for _, p in _SECTION_PATTERNS]
    for pattern in patterns:
        rest = pattern.sub(" ", rest)
    words: list[str] = []
    gap = True
    for token in jieba_words(rest):
        if token in _FILLER or not re.search(r"\w", token):
            gap = True
            continue
        if gap or not words:
            words.append(token)
        else:
            words[-1] += token
        gap = False
    topic = " ".join(words)
    return topic if len(topic.replace(" ", "")) >= 2 else ""


_ELLIPSIS = re.compile(
    r"^(?:那|那么|那如果|还有|另外|而|如果是|要是|换成)?\s*(?P<x>.{1,20}?)\s*"
    r"(?:呢|又如何|又怎样|又怎么样|又是什么|又是怎样的|的情况呢)[？?。.!！]*$"
)
_LEAD = re.compile(r"^(?:那|那么|还有|另外|换成)\s*(?P<x>.{1,20}?)[？?。.!！]*$")


def _ellipsis(text: str) -> str | None:
    """The new subject of an elliptical follow-up (``那党员呢？`` -> ``党员``), if it is one."""
    m = _ELLIPSIS.match(text) or _LEAD.match(text)
    if m is None:
        return None
    x = m.group("x").strip("，,、 ")
    if not x or re.search(r"什么|怎么|如何|哪|谁|几|多少|吗", x):
        return None
    return x


_QUESTION_WORD = re.compile(r"谁|什么|哪|几|多少|怎|如何|为何|为什么|是否|吗")
# Where a question's subject ends: the first of these words after it (jieba tokens).
_PREDICATE = frozenset(
    (
        "要 应 应该 应当 需要 必须 的 是 有 在 如何 怎么 怎样 怎么样 叫 叫做 被 "
        "将 把 对 为 能 能够 会 得 都 还 也 作为 提出 强调 包括 主要 该 要求 坚持 "
        "着力 已经 正在 打造 实施 建设 推进 "
    ).split()
)


def _subjects(question: str) -> tuple[str, ...]:
    """What a question is about, before its predicate: ``招商引资要…`` -> ``招商引资``.

    Two readings when a ``的`` comes first: ``县委的总体思路叫什么`` is about ``县委`` (``那市委呢``
    keeps ``的总体思路``), ``全市唯一的县级方舱医院建设…`` about the whole noun phrase.
    """
    found: list[str] = []
    subject = ""
    for token in jieba_words(question):
        if not token.strip() or re.match(r"[^\w“”\"*]", token):
            break
        if token in _PREDICATE:
            found.append(subject)
            if token != "的":
                break
        subject += token
    return tuple(
        dict.fromkeys(
            s for s in found if len(s) >= 2 and not _QUESTION_WORD.search(s) and s != question
        )
    )


def _substitute(question: str, subjects: Sequence[str], new: str) -> list[str]:
    """``干部要做到什么？`` about ``干部``, followed by ``那党员呢？`` -> ``党员要做到什么？``."""
    readings = [new + question[len(s) :] for s in subjects if question.startswith(s)]
    return readings or [f"{new}，{question}"]


_GREETING = re.compile(
    r"^(?:你好|您好|hi|hello|hey|嗨|哈喽|哈啰|在吗|在不在|早上好|上午好|下午好|晚上好|早|喂)"
    r"(?:呀|啊|哇)?[!！。.~～,， ]*(?:speechqa)?[!！。.~～ ]*$",
    re.I,
)
_THANKS = re.compile(
    r"^(?:谢谢|多谢|感谢|谢了|thanks|thank you|thx|好的|好|ok|okay|嗯|嗯嗯|明白了|知道了|收到|"
    r"懂了|了解)(?:你|您)?(?:啦|了)?[!！。.~～ ]*$",
    re.I,
)
_BYE = re.compile(r"^(?:再见|拜拜|bye|goodbye|回头见)[!！。.~～ ]*$", re.I)
_HELP = re.compile(
    r"^(?:你是谁|你叫什么|你是什么|你能做什么|你会什么|你可以做什么|你能干什么|怎么用|如何使用|"
    r"使用说明|帮助|help|你有什么功能|介绍一下你自己|你好，你是谁)[？?!！。.]*$",
    re.I,
)


def _small_talk_kind(text: str) -> str | None:
    if not re.search(r"\w", text):
        return "help"
    if _GREETING.match(text) or _HELP.match(text):
        return "help"
    if _THANKS.match(text):
        return "thanks"
    if _BYE.match(text):
        return "bye"
    return None


# Front ends ask the model itself for titles, tags, follow-up suggestions and search queries.
_TASK_PROMPT = re.compile(r"###\s*Task:|<chat_history>|\|\|>User:|<conversation>", re.I)
_TITLE_PROMPT = re.compile(
    r"\btitle\b.{0,80}\b(?:conversation|chat)\b|\b(?:conversation|chat)\b.{0,80}\btitle\b|"
    r"简要主题|(?:会话|对话|聊天).{0,20}(?:标题|主题)|(?:标题|主题).{0,20}(?:会话|对话|聊天)",
    re.I | re.S,
)
_MEMORY_PROMPT = re.compile(
    r"(?:总结|概括).{0,10}(?:对话|会话|聊天)内容|summari[sz]e\s+(?:the|this|our)\s+"
    r"(?:conversation|chat)",
    re.I,
)


def _housekeeping_kind(text: str) -> str | None:
    """Which front-end chore a message is, or ``None`` for a real question."""
    if _TASK_PROMPT.search(text):
        key = _json_key(text)
        if key in ("title", "tags", "follow_ups", "queries", "text"):
            return {"text": "autocomplete"}.get(key, key)
        if re.search(r"emoji", text, re.I):
            return "emoji"
        if _TITLE_PROMPT.search(text):
            return "title"
        return "other"
    if _TITLE_PROMPT.search(text):
        return "title"
    if _MEMORY_PROMPT.search(text):
        return "memory"
    return None


def _json_key(prompt: str) -> str | None:
    m = re.search(r"JSON format:?\s*\{\s*\"(\w+)\"", prompt, re.I) or re.search(
        r"\{\s*\"(\w+)\"\s*:", prompt
    )
    return m.group(1) if m else None


def _history_questions(prompt: str) -> list[str]:
    """The user's lines inside a task prompt's quoted chat history."""
    found = re.findall(r"^\s*USER:\s*(.+)$", prompt, re.M)
    found += re.findall(r"\|\|>User:\s*\"?(.+?)\"?\s*$", prompt, re.M)
    found += re.findall(r"^\s*user:\s*(.+)$", prompt, re.M)
    return [q.strip() for q in found if q.strip()]


def _make_title(question: str) -> str:
    text = re.sub(r"\s+", "", question)
    text = re.sub(r"[？?！!。.]+$", "", text)
    text = re.sub(r"(?:是什么|是谁|叫什么|有哪些|是多少|吗|呢)$", "", text)
    if not text:
        return "讲话问答"
    return text if len(text) <= 16 else text[:16] + "…"


def _normalize(text: str) -> str:
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", text)
    return re.sub(r"\s+", " ", text.replace("\u3000", " ")).strip()
