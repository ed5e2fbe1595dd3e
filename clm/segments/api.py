"""HTTP routes of the segments domain: CRUD, preview, members page by page, static list edits."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from clm.auth.http import requires
from clm.core.payloads import MAX_ID
from clm.segments.service import (
    Build,
    MemberRow,
    Preview,
    Segment,
    add_members,
    create_segment,
    delete_segment,
    get_segment,
    list_segments,
    members,
    preview,
    rebuild_segments,
    remove_members,
    update_segment,
)

router = APIRouter(prefix="/api/v1/segments", tags=["segments"])
read = [Depends(requires("read"))]
write = [Depends(requires("write"))]
SegmentName = Annotated[str, Path(min_length=1, max_length=100, description="The segment's name.")]

_CONDITION_DOC = (
    'The condition as text, e.g. `stage = "retention" and events(product_view, last 14d) >= 3 '
    "and not purchased(last 60d)` (see docs/segments.md for every field and function)."
)


class ConditionIn(BaseModel):
    where: str | None = Field(None, max_length=10_000, description=_CONDITION_DOC)
    condition: Any = Field(
        None, description='The same condition in its JSON form, instead of `where`: {"and": [...]}, …'
    )


class PreviewIn(ConditionIn):
    sample: int = Field(10, ge=0, le=100, description="How many matching customers to list.")


class SegmentIn(ConditionIn):
    name: str = Field(..., min_length=1, max_length=100, description="Letters, digits, `_` and `-`.")
    description: str = Field("", max_length=2_000)
    static: bool = Field(False, description="A static list: members are added by id, not by a condition.")
    customer_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        default_factory=list, max_length=100_000, description="The first members of a static list."
    )


class SegmentPatch(ConditionIn):
    description: str | None = Field(None, max_length=2_000)


class SegmentOut(BaseModel):
    segment: Segment
    build: Build | None = None


class MembersOut(BaseModel):
    total: int
    limit: int
    offset: int
    members: list[MemberRow]


class MemberIds(BaseModel):
    customer_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(..., min_length=1, max_length=100_000)


class Changed(BaseModel):
    changed: int = Field(..., description="Customers who entered (or left) the list.")


@router.get("", response_model=list[Segment], dependencies=read)
def read_segments(request: Request) -> list[Segment]:
    """Every segment with its size at the last change."""
    return list_segments(request.app.state.engine)


@router.post("/preview", response_model=Preview, dependencies=read, openapi_extra={"x-read-only": True})
def preview_segment(body: PreviewIn, request: Request) -> Preview:
    """How many customers a condition selects now, with a sample; nothing is saved."""
    return preview(request.app.state.engine, body.where, body.condition, sample=body.sample)


@router.post("", response_model=SegmentOut, status_code=201, dependencies=write)
def post_segment(body: SegmentIn, request: Request) -> SegmentOut:
    """Create a dynamic segment (built at once) or a static list."""
    segment, build = create_segment(
        request.app.state.engine,
        body.name,
        description=body.description,
        where=body.where,
        condition=body.condition,
        static=body.static,
        customer_ids=body.customer_ids,
    )
    return SegmentOut(segment=segment, build=build)


@router.get("/{name}", response_model=Segment, dependencies=read)
def read_segment(name: SegmentName, request: Request) -> Segment:
    return get_segment(request.app.state.engine, name)


@router.patch("/{name}", response_model=SegmentOut, dependencies=write)
def patch_segment(name: SegmentName, body: SegmentPatch, request: Request) -> SegmentOut:
    """Change the description and/or the condition (a new condition rebuilds the segment)."""
    segment, build = update_segment(
        request.app.state.engine,
        name,
        description=body.description,
        where=body.where,
        condition=body.condition,
    )
    return SegmentOut(segment=segment, build=build)


@router.delete("/{name}", status_code=204, dependencies=write)
def remove_segment(name: SegmentName, request: Request) -> Response:
    delete_segment(request.app.state.engine, name)
    return Response(status_code=204)


@router.post("/{name}/rebuild", response_model=Build, dependencies=write)
def rebuild_segment(name: SegmentName, request: Request) -> Build:
    """Re-evaluate a dynamic segment in full now."""
    builds = rebuild_segments(request.app.state.engine, [name])
    if builds:
        return builds[0]
    segment = get_segment(request.app.state.engine, name)
    return Build(name, segment.members, 0, 0)


@router.get("/{name}/members", response_model=MembersOut, dependencies=read)
def read_members(
    name: SegmentName,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> MembersOut:
    """The current members by customer id, page by page."""
    total, rows = members(request.app.state.engine, name, limit=limit, offset=offset)
    return MembersOut(total=total, limit=limit, offset=offset, members=rows)


@router.post("/{name}/members", response_model=Changed, dependencies=write)
def post_members(name: SegmentName, body: MemberIds, request: Request) -> Changed:
    """Add customers to a static list."""
    return Changed(changed=add_members(request.app.state.engine, name, body.customer_ids))


@router.delete("/{name}/members/{customer_id}", response_model=Changed, dependencies=write)
def delete_member(
    name: SegmentName, customer_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request
) -> Changed:
    """Take a customer off a static list."""
    return Changed(changed=remove_members(request.app.state.engine, name, [customer_id]))
