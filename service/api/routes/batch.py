"""Batch work over many documents: queue a job, answer 202 with where to follow it."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import Field

from service.api.deps import SpeechesDep
from service.api.routes.jobs import JobOut, JobsDep, job_out
from service.api.schemas import FilterValue, SummaryBudget, filter_field
from service.errors import InvalidInput

router = APIRouter(prefix="/v1/batch", tags=["batch"])


class BatchSummariesIn(SummaryBudget):
    all: bool = Field(False, description="every document (narrowed by filter, if given)")
    doc_ids: list[str] | None = Field(None, min_length=1, max_length=100_000)
    filter: dict[str, FilterValue] | None = filter_field()


@router.post(
    "/summaries",
    status_code=status.HTTP_202_ACCEPTED,
    responses={202: {"description": "queued; follow the job at its Location"}},
)
def submit_summaries(
    body: BatchSummariesIn, speeches: SpeechesDep, jobs: JobsDep, response: Response
) -> JobOut:
    if body.all and body.doc_ids is not None:
        raise InvalidInput("give `all: true` or `doc_ids`, not both")
    if not body.all and body.doc_ids is None and body.filter is None:
        raise InvalidInput("choose the documents: `doc_ids`, `filter`, or `all: true`")
    doc_ids = speeches.select_documents(body.doc_ids, body.filter)
    if not doc_ids:
        raise InvalidInput(
            "no documents match the filter" if body.filter else "there are no documents yet"
        )
    job = jobs.submit_summaries(
        doc_ids,
        selection={"all": body.all, "doc_ids": body.doc_ids, "filter": body.filter},
        max_sentences=body.max_sentences,
        max_chars=body.max_chars,
        ratio=body.ratio,
        include_subsections=body.include_subsections,
    )
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job_out(job)
