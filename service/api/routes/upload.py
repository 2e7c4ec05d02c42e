"""Upload speech files (multipart, several at once): .txt, .md, .docx, .pdf, .html."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from service.api.deps import SpeechesDep
from service.api.schemas import check_metadata
from service.core import IngestReport, Speeches
from service.errors import InvalidInput, PayloadTooLarge, ServiceError
from service.formats import FORMATS, UnsupportedFormat, format_of

router = APIRouter(prefix="/v1/documents", tags=["documents"])

_MULTIPART_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "one or more files: " + ", ".join(sorted(FORMATS)),
                        },
                        "metadata": {
                            "type": "string",
                            "description": "optional JSON object added to every file's metadata",
                        },
                    },
                }
            }
        },
    }
}


class FileErrorOut(BaseModel):
    code: str
    message: str


class UploadedOut(BaseModel):
    filename: str
    doc_id: str | None
    status: str = Field(description="created | replaced | unchanged | failed")
    title: str | None = None
    error: FileErrorOut | None = None


class UploadOut(BaseModel):
    documents: list[UploadedOut]
    created: int
    replaced: int
    unchanged: int
    failed: int


class UploadFailed(ServiceError):
    """Every file of an upload failed: the first failure's code, every file's message."""

    def __init__(self, reports: list[IngestReport]) -> None:
        super().__init__("; ".join(r.error or r.status for r in reports))
        self.code = reports[0].code or "unreadable_file"
        self.status = 413 if self.code == "payload_too_large" else 400


def _ingest(
    speeches: Speeches, files: list[tuple[str, bytes]], metadata: dict[str, Any] | None
) -> list[IngestReport]:
    taken: dict[str, str] = {}
    return [
        speeches.ingest_data(data, name, metadata=metadata, taken=taken) for name, data in files
    ]


@router.post(
    "/upload",
    openapi_extra=_MULTIPART_SCHEMA,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "nothing new was created (replaced, unchanged or some failed)"},
        400: {"description": "every file failed to read"},
        413: {"description": "a file or the request is over the size limit"},
        415: {"description": "not multipart, or a file of an unsupported type"},
    },
)
async def upload(request: Request, speeches: SpeechesDep, response: Response) -> UploadOut:
    """Ingest each file like `speechqa ingest`: the id is the file name without extension (or
    front matter `id:`), unchanged files change nothing, a file that cannot be read is reported
    and skipped. Unsupported types and oversized files reject the whole request first."""
    settings = speeches.settings
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise UnsupportedFormat("send multipart/form-data with one or more `files` parts")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > settings.max_upload_bytes:
        raise PayloadTooLarge(
            f"the request has {length} bytes; the limit is {settings.max_upload_bytes}"
        )
    form = await request.form(max_files=settings.max_upload_files, max_fields=10)
    try:
        uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not uploads:
            raise InvalidInput("no files: send them as multipart parts named `files`")
        metadata = _metadata(form.get("metadata"))
        for f in uploads:
            format_of(f.filename or "")  # 415 before anything is read or stored
            if f.size is not None and f.size > settings.max_file_bytes:
                raise PayloadTooLarge(
                    f"{f.filename}: {f.size} bytes; the limit is {settings.max_file_bytes}"
                )
        files = []
        for f in uploads:
            data = await f.read()
            if len(data) > settings.max_file_bytes:
                raise PayloadTooLarge(
                    f"{f.filename}: {len(data)} bytes; the limit is {settings.max_file_bytes}"
                )
            files.append((_safe_name(f.filename or ""), data))
    finally:
        await form.close()
    reports = await run_in_threadpool(_ingest, speeches, files, metadata)
    if all(r.status == "failed" for r in reports):
        raise UploadFailed(reports)
    counts = {s: sum(r.status == s for r in reports) for s in ("created", "replaced", "unchanged")}
    if not counts["created"]:
        response.status_code = status.HTTP_200_OK
    return UploadOut(
        documents=[
            UploadedOut(
                filename=r.source or r.path.name,
                doc_id=r.doc_id,
                status=r.status,
                title=r.title,
                error=FileErrorOut(code=r.code or "unreadable_file", message=r.error or "")
                if r.status == "failed"
                else None,
            )
            for r in reports
        ],
        failed=sum(r.status == "failed" for r in reports),
        **counts,
    )


def _safe_name(filename: str) -> str:
    """The file's own name: a client's directories (or ``..``) are not ours to keep."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name or "upload"


def _metadata(raw: Any) -> dict[str, Any] | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > 20_000:
        raise InvalidInput("metadata must be a JSON object of at most 20,000 characters")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"metadata is not valid JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise InvalidInput("metadata must be a JSON object")
    try:
        return check_metadata(value)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
