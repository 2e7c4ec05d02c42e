"""OpenAI-compatible chat: ``GET /v1/models`` and ``POST /v1/chat/completions``.

A thin layer over :class:`service.chat.Chat`. The model ``speechqa`` asks every speech;
``speechqa:<doc_id>`` asks one (any other model name is taken as ``speechqa``, so that a front
end's fixed housekeeping model still gets an answer). An extra body field ``doc_ids`` narrows the
speeches further. Replies carry ``citations`` (and ``speechqa``: how the turn was understood) as
extra top-level fields of the completion, and of the final chunk when streamed.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import SpeechesDep
from service.chat import Chat, ChatMessage, ChatReply
from service.core import Speeches
from service.errors import NotFound

router = APIRouter(tags=["chat"])

MODEL_ID = "speechqa"
DOC_MODEL_PREFIX = "speechqa:"
_STARTED = int(time.time())


# -- models -----------------------------------------------------------------------------------
class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "speechqa"
    name: str = Field(description="a readable name (front ends show it)")
    doc_id: str | None = Field(None, description="the one speech this model asks, if any")


class ModelListOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


def _models(speeches: Speeches) -> list[ModelOut]:
    chat = Chat(speeches)
    models = [ModelOut(id=MODEL_ID, created=_STARTED, name="speechqa（全部讲话）")]
    for row in speeches.list_documents():
        models.append(
            ModelOut(
                id=DOC_MODEL_PREFIX + row["id"],
                created=_STARTED,
                name=f"speechqa：{chat.label(row['id'])}",
                doc_id=row["id"],
            )
        )
    return models


@router.get("/v1/models")
def list_models(speeches: SpeechesDep) -> ModelListOut:
    return ModelListOut(data=_models(speeches))


@router.get("/v1/models/{model_id:path}")
def get_model(model_id: str, speeches: SpeechesDep) -> ModelOut:
    for model in _models(speeches):
        if model.id == model_id:
            return model
    raise NotFound(f"no model {model_id!r}")


# -- chat completions -------------------------------------------------------------------------
class ContentPartIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(max_length=64)
    text: str | None = None


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPartIn] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(
            p.text for p in self.content if p.type in ("text", "input_text") and p.text
        )


class StreamOptionsIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionIn(BaseModel):
    """The OpenAI request; sampling options are accepted and have no effect (extractive)."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(MODEL_ID, min_length=1, max_length=300)
    messages: list[MessageIn] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptionsIn | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int | None = Field(None, ge=1, le=1, description="only one choice is produced")
    doc_ids: list[str] | None = Field(
        None, min_length=1, max_length=1000, description="speechqa: the speeches to use"
    )


class CitationOut(BaseModel):
    index: int = Field(description="the n of the marker [n] in the text")
    doc_id: str
    doc_title: str
    section_id: str
    section_title: str
    paragraph: int = Field(description="1-based line of the source text")
    start: int = Field(description="offset of the quoted text in the document's text")
    end: int
    text: str = Field(description="the quoted text, copied from the speech")
    answer_start: int | None = Field(None, description="the answer span, when there is one")
    answer_end: int | None = None


class TurnOut(BaseModel):
    intent: str = Field(description="ask | summarize | outline | compare | smalltalk | ...")
    answerable: bool
    question: str | None = Field(None, description="the question as resolved from the chat")
    doc_ids: list[str]
    section_id: str | None


class AssistantMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChoiceOut(BaseModel):
    index: int = 0
    message: AssistantMessageOut
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class UsageOut(BaseModel):
    """Characters, not tokens: there is no tokenizer behind an extractive answer."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionOut(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChoiceOut]
    usage: UsageOut
    citations: list[CitationOut]
    speechqa: TurnOut


def _scope(body: ChatCompletionIn) -> list[str] | None:
    if body.doc_ids is not None:
        return body.doc_ids
    if body.model.startswith(DOC_MODEL_PREFIX):
        return [body.model[len(DOC_MODEL_PREFIX) :]]
    return None


def _usage(body: ChatCompletionIn, reply: ChatReply) -> UsageOut:
    prompt = sum(len(m.text()) for m in body.messages)
    return UsageOut(
        prompt_tokens=prompt,
        completion_tokens=len(reply.content),
        total_tokens=prompt + len(reply.content),
    )


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletionOut,
    responses={200: {"content": {"text/event-stream": {}}, "description": "stream=true: SSE"}},
)
def chat_completions(body: ChatCompletionIn, speeches: SpeechesDep) -> Any:
    messages = [ChatMessage(m.role, m.text()) for m in body.messages]
    reply = Chat(speeches).reply(messages, _scope(body))
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    citations = [CitationOut.model_validate(c.as_dict()) for c in reply.citations]
    turn = TurnOut.model_validate(reply.meta())
    usage = _usage(body, reply)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            _stream(
                completion_id, created, body.model, reply, citations, turn, usage, include_usage
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return ChatCompletionOut(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[ChoiceOut(message=AssistantMessageOut(content=reply.content))],
        usage=usage,
        citations=citations,
        speechqa=turn,
    )


def pieces(text: str, size: int = 8) -> list[str]:
    """The text in short pieces for streaming; a marker ``[n]`` or ``**`` is never split."""
    units = re.findall(r"\[\d+\]|\*\*|.", text, re.S)
    return ["".join(units[i : i + size]) for i in range(0, len(units), size)]


def _stream(
    completion_id: str,
    created: int,
    model: str,
    reply: ChatReply,
    citations: list[CitationOut],
    turn: TurnOut,
    usage: UsageOut,
    include_usage: bool,
) -> Iterator[str]:
    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        chunk = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
            **extra,
        }
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    yield event(
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    )
    for piece in pieces(reply.content):
        yield event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
    yield event(
        [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        citations=[c.model_dump() for c in citations],
        speechqa=turn.model_dump(),
    )
    if include_usage:
        yield event([], usage=usage.model_dump())
    yield "data: [DONE]\n\n"
