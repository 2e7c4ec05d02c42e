"""Batch jobs: status and progress, the result as JSON Lines, deletion."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from service.jobs import Job, Jobs

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


async def get_jobs(request: Request) -> Jobs:
    # async: never blocks, so no thread-pool hop (see service.api.deps)
    return request.app.state.jobs


JobsDep = Annotated[Jobs, Depends(get_jobs)]


class ProgressOut(BaseModel):
    done: int = Field(description="sections summarised so far")
    total: int = Field(description="sections in the job's documents")
    documents: int
    failed_documents: int


class JobOut(BaseModel):
    id: str
    kind: str
    status: str = Field(description="queued | running | done | failed")
    progress: ProgressOut
    params: dict[str, Any]
    error: str | None = Field(description="why the job failed")
    interruptions: int = Field(description="times a stop of the service interrupted it")
    created_at: str
    started_at: str | None
    finished_at: str | None
    updated_at: str
    links: dict[str, str]


class JobListOut(BaseModel):
    jobs: list[JobOut]


def job_out(job: Job) -> JobOut:
    return JobOut.model_validate(
        {
            **job.as_dict(),
            "links": {"self": f"/v1/jobs/{job.id}", "result": f"/v1/jobs/{job.id}/result"},
        }
    )


@router.get("")
def list_jobs(jobs: JobsDep, limit: int = Query(100, ge=1, le=1000)) -> JobListOut:
    return JobListOut(jobs=[job_out(j) for j in jobs.list_jobs(limit)])


@router.get("/{job_id}")
def get_job(job_id: str, jobs: JobsDep) -> JobOut:
    return job_out(jobs.get(job_id))


@router.get(
    "/{job_id}/result",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-ndjson": {}},
            "description": "one JSON object per line: a section's summary "
            '({"doc_id", "doc_title", "section_id", "level", "marker", "title", "summary", '
            '"sentences"}), or {"doc_id", "error"} for a document that could not be summarised',
        },
        409: {"description": "the job is not finished (unless partial=true)"},
    },
)
def get_result(
    job_id: str,
    jobs: JobsDep,
    partial: bool = Query(False, description="stream what is done so far, finished or not"),
) -> StreamingResponse:
    lines = jobs.result_lines(job_id, partial=partial)
    return StreamingResponse(
        lines,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'inline; filename="{job_id}.jsonl"'},
    )


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_job(job_id: str, jobs: JobsDep) -> Response:
    jobs.delete(job_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
