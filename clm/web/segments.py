"""The segments pages: the list (`/segments`: each segment's size, its size over the last 30
days and what reads it, other segments and journeys), one segment (`/segments/{id}`), its
members page by page with the 360° link, their CSV export (UTF-8 with BOM, audited like the
customer export), and a static list's edits (a file or typed ids, emails and phones in; a
member out). Segments are addressed by id, so any name works in a link."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from clm.auth.service import record_audit
from clm.core.errors import ClmError, NotFound
from clm.core.exports import content_disposition, csv_chunks, export_encoding, media_type, zoned_header
from clm.core.files import DataFile
from clm.core.settings import settings
from clm.core.timeutil import utcnow
from clm.customers.masking import mask_email, mask_phone
from clm.customers.names import full_name
from clm.journeys.checks import references
from clm.journeys.service import get_journey, list_journeys
from clm.segments.lists import import_list
from clm.segments.service import (
    Segment,
    delete_segment,
    iter_members,
    list_segments,
    members,
    remove_members,
    segment_by_id,
    size_history,
)
from clm.web.access import Console, page
from clm.web.frame import sees_contact_details
from clm.web.i18n import N_
from clm.web.menu import BY_KEY

router = APIRouter(include_in_schema=False, tags=["console"])

PER_PAGE = 50
TREND_DAYS = 30
CHART_DAYS = 90
MAX_TYPED = 5_000  # ids, emails or phones typed into a static list at once
EXPORT_COLUMNS = ("customer_id", "name", "external_id", "email", "phone", "city", "entered_at")


def readers(console: Console, segments: list[Segment]) -> dict[str, dict[str, list[str]]]:
    """For each segment name, the segments (`in_segment`) and journeys (triggers, broadcasts,
    conditions) that read it."""
    out: dict[str, dict[str, list[str]]] = {s.name: {"segments": [], "journeys": []} for s in segments}
    for s in segments:
        for d in s.depends:
            if d.startswith("segment:") and d[8:] in out:
                out[d[8:]]["segments"].append(s.name)
    for journey in list_journeys(console.engine):
        _, definition = get_journey(console.engine, journey.name)
        named = {name for kind, name, _, _ in references(definition) if kind == "segment"}
        for name in sorted(named):
            if name in out:
                out[name]["journeys"].append(journey.name)
    return out


def daily_sizes(
    history: list[tuple[Any, int]], days: int, current: int, tz: ZoneInfo
) -> list[tuple[str, int | None]]:
    """One point per day in the store's time zone: the last size measured that day, carried
    forward over days without a measurement; today ends at the current size."""
    today = utcnow().astimezone(tz).date()
    by_day = {at.astimezone(tz).date(): size for at, size in history}  # oldest first: last wins
    points: list[tuple[str, int | None]] = []
    last: int | None = None
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        last = by_day.get(day, last)
        points.append((day.isoformat(), current if back == 0 else last))
    return points


def _trends(console: Console, segments: list[Segment], days: int) -> dict[int, list[tuple[str, int | None]]]:
    tz = ZoneInfo(settings().default_timezone)
    since = utcnow() - timedelta(days=days + 1)
    history = size_history(console.engine, [s.id for s in segments], since)
    return {s.id: daily_sizes(history[s.id], days, s.members, tz) for s in segments}


@router.get("/segments", response_class=HTMLResponse)
def segments_list(console: Annotated[Console, Depends(page("read", "segments"))]) -> Response:
    console.crumbs = [(N_("Segments"), None)]
    found = list_segments(console.engine)
    return console.render(
        "segments/list.html",
        segments=found,
        readers=readers(console, found),
        trends=_trends(console, found, TREND_DAYS),
        may_write=console.user is not None and console.user.can("write"),
        section=BY_KEY["segments"],
    )


def _segment(console: Console, segment_id: int) -> Segment | None:
    try:
        return segment_by_id(console.engine, segment_id)
    except NotFound:
        console.crumbs = [(N_("Segments"), "/segments"), (N_("Not found"), None)]
        return None


def _segment_page(console: Console, segment: Segment, status: int = 200, **extra: Any) -> Response:
    console.crumbs = [(N_("Segments"), "/segments"), (segment.name, None)]
    total, sample = members(console.engine, segment.name, limit=10)
    return console.render(
        "segments/segment.html",
        status,
        segment=segment,
        readers=readers(console, list_segments(console.engine))[segment.name],
        trend=_trends(console, [segment], CHART_DAYS)[segment.id],
        total=total,
        sample=sample,
        full=sees_contact_details(console),
        may_write=console.user is not None and console.user.can("write"),
        section=BY_KEY["segments"],
        **extra,
    )


@router.get("/segments/{segment_id}", response_class=HTMLResponse)
def segment_page(
    console: Annotated[Console, Depends(page("read", "segments"))],
    segment_id: int,
    saved: Annotated[int, Query(ge=0, le=1)] = 0,
    entered: Annotated[int, Query(ge=0)] = 0,
    exited: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    segment = _segment(console, segment_id)
    if segment is None:
        return console.render("not_found.html", 404)
    return _segment_page(console, segment, saved=bool(saved), entered=entered, exited=exited)


@router.get("/segments/{segment_id}/members", response_class=HTMLResponse)
def segment_members(
    console: Annotated[Console, Depends(page("read", "segments"))],
    segment_id: int,
    p: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    segment = _segment(console, segment_id)
    if segment is None:
        return console.render("not_found.html", 404)
    console.crumbs = [
        (N_("Segments"), "/segments"),
        (segment.name, f"/segments/{segment.id}"),
        (N_("Members"), None),
    ]
    total, rows = members(console.engine, segment.name, limit=PER_PAGE, offset=(p - 1) * PER_PAGE)
    pages = max(1, -(-total // PER_PAGE))
    return console.render(
        "segments/members.html",
        segment=segment,
        total=total,
        rows=rows,
        page=p,
        pages=pages,
        full=sees_contact_details(console),
        may_write=console.user is not None and console.user.can("write"),
        section=BY_KEY["segments"],
    )


def _csv_rows(engine: Any, name: str, full: bool) -> Iterator[tuple[Any, ...]]:
    yield (*EXPORT_COLUMNS[:-1], zoned_header(EXPORT_COLUMNS[-1]))
    for cid, external_id, email, phone, first, last, city, entered_at in iter_members(engine, name):
        yield (
            cid,
            full_name(first, last),
            external_id,
            email if full else mask_email(email),
            phone if full else mask_phone(phone),
            city,
            entered_at,  # the store's wall time, the zone in the header
        )


@router.get("/segments/{segment_id}/export.csv")
def segment_export(
    console: Annotated[Console, Depends(page("read", "segments"))],
    segment_id: int,
    encoding: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """Every current member as CSV (clm.core.exports: UTF-8 with BOM, or `?encoding=gb18030`);
    the export is audited first, with the segment and how many members it held; contact details
    masked for roles that see them masked."""
    assert console.user is not None
    encoding = export_encoding(encoding)
    segment = _segment(console, segment_id)
    if segment is None:
        return console.render("not_found.html", 404)
    full = sees_contact_details(console)
    with console.engine.begin() as conn:
        record_audit(
            conn,
            console.user.actor,
            "segments.export",
            "segment",
            str(segment.id),
            {
                "segment": segment.name,
                "rows": segment.members,
                "contact_details": "full" if full else "masked",
            },
        )
    return StreamingResponse(
        csv_chunks(_csv_rows(console.engine, segment.name, full), encoding),
        media_type=media_type(encoding),
        headers={
            "Content-Disposition": content_disposition(f"segment-{segment.id}.csv"),
            "Cache-Control": "no-store",
        },
    )


def _why(exc: ClmError) -> str:
    return str(getattr(exc, "reason", None) or exc.message)


def _typed_rows(text: str) -> list[dict[str, str]]:
    """Lines of ids, emails or phones (commas, spaces and new lines separate them)."""
    rows = []
    for item in text.replace(",", "\n").replace("，", "\n").split():
        if item.isdigit() and len(item) < 11:
            rows.append({"customer_id": item})
        elif "@" in item:
            rows.append({"email": item})
        else:
            rows.append({"phone": item})
    return rows


def _import(console: Console, segment: Segment, path: Path) -> Any:
    return import_list(console.engine, segment.name, DataFile(path))


@router.post("/segments/{segment_id}/members/add", response_class=HTMLResponse)
async def segment_add_members(
    console: Annotated[Console, Depends(page("write", "segments"))],
    segment_id: int,
    typed: Annotated[str, Form(max_length=200_000)] = "",
    upload: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Add customers to a static list from typed ids, emails and phones or from a file (CSV,
    JSON Lines or Excel with a customer_id, email, phone or external_id column); rows that name
    nobody are listed with the reason, the others are added."""
    segment = await run_in_threadpool(_segment, console, segment_id)
    if segment is None:
        return console.render("not_found.html", 404)
    if segment.kind != "static":
        return await run_in_threadpool(_segment_page, console, segment, 422, add_error="dynamic")
    with tempfile.TemporaryDirectory() as folder:
        if upload is not None and upload.filename:
            suffix = Path(upload.filename).suffix.lower() or ".csv"
            path = Path(folder) / f"upload{suffix}"
            with path.open("wb") as out:
                while chunk := await upload.read(1 << 20):
                    out.write(chunk)
        else:
            rows = _typed_rows(typed)
            if not rows or len(rows) > MAX_TYPED:
                return await run_in_threadpool(_segment_page, console, segment, 422, add_error="typed")
            path = Path(folder) / "typed.csv"
            with path.open("w", newline="", encoding="utf-8") as out:
                writer = csv.DictWriter(out, fieldnames=["customer_id", "email", "phone"])
                writer.writeheader()
                writer.writerows(rows)
        try:
            report = await run_in_threadpool(_import, console, segment, path)
        except ClmError as exc:
            return await run_in_threadpool(
                _segment_page, console, segment, 422, add_error="file", add_reason=_why(exc)
            )
    segment = await run_in_threadpool(segment_by_id, console.engine, segment.id)
    return await run_in_threadpool(_segment_page, console, segment, report=report)


@router.post("/segments/{segment_id}/members/remove")
def segment_remove_member(
    console: Annotated[Console, Depends(page("write", "segments"))],
    segment_id: int,
    customer_id: Annotated[int, Form(ge=1)],
) -> Response:
    """Take one customer off a static list (the membership moves to the history)."""
    segment = _segment(console, segment_id)
    if segment is None:
        return console.render("not_found.html", 404)
    if segment.kind == "static":
        remove_members(console.engine, segment.name, [customer_id])
    return console.redirect(f"/segments/{segment.id}/members")


@router.post("/segments/{segment_id}/delete")
def segment_delete(
    console: Annotated[Console, Depends(page("write", "segments"))], segment_id: int
) -> Response:
    """Delete a segment (refused, with the reason, while another segment reads it)."""
    segment = _segment(console, segment_id)
    if segment is None:
        return console.render("not_found.html", 404)
    try:
        delete_segment(console.engine, segment.name)
    except ClmError as exc:
        return _segment_page(console, segment, 409, delete_error=_why(exc))
    return console.redirect("/segments")
