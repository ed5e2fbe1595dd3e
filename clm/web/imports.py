"""The imports pages (`/imports`): upload a customers, events, orders or products file (streamed to
disk, never held in memory), confirm its columns against a preview of the first rows as the
import reads them, follow the import as a background job, and download the rows it rejected.
Marketers and admins import; every role sees the list. The jobs are clm.worker.import_jobs."""

from __future__ import annotations

import shutil
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from clm.auth.service import record_audit
from clm.core.encodings import check_encoding
from clm.core.errors import ClmError, NotFound
from clm.web.access import Console, page
from clm.web.i18n import N_
from clm.worker.import_jobs import (
    ImportJob,
    create_upload,
    discard_stale_uploads,
    discard_upload,
    get_job,
    import_dir,
    list_jobs,
    max_upload_bytes,
    queue_job,
    retry_job,
    stored_name_for,
)
from clm.worker.import_preview import (
    FIELDS,
    REQUIRED,
    is_plain,
    preview_file,
    suggest_mapping,
    workbook_sheets,
)
from clm.worker.import_runner import ImportRunner

router = APIRouter(include_in_schema=False, tags=["console"])

KIND_NAMES = {
    "customers": N_("Customers"),
    "events": N_("Events"),
    "orders": N_("Orders"),
    "products": N_("Products"),
}
STATUS_NAMES = {
    "uploaded": N_("Columns to confirm"),
    "queued": N_("Waiting to start"),
    "running": N_("Importing"),
    "refreshing": N_("Updating stages and segments"),
    "done": N_("Done"),
    "failed": N_("Failed"),
}
ENCODINGS = {
    "": N_("Recognise automatically"),
    "utf-8": "UTF-8",
    "gb18030": "GBK / GB18030",
    "utf-16": "UTF-16",
}
COUNTER_NAMES = {
    "customers_created": N_("New customers"),
    "orders_created": N_("New orders"),
    "orders_updated": N_("Orders updated"),
    "products": N_("Products stored"),
}
FIELD_NAMES = {
    "external_id": N_("Member or customer number"),
    "email": N_("Email"),
    "phone": N_("Mobile phone"),
    "anonymous_id": N_("Anonymous visitor id"),
    "wechat_openid": N_("WeChat OpenID (appid:openid)"),
    "wechat_unionid": N_("WeChat UnionID"),
    "wecom_external_userid": N_("WeCom external contact id"),
    "full_name": N_("Full name"),
    "first_name": N_("Given name"),
    "last_name": N_("Family name"),
    "birthday": N_("Birthday"),
    "gender": N_("Gender"),
    "city": N_("City"),
    "region": N_("Province or region"),
    "country": N_("Country"),
    "timezone": N_("Time zone"),
    "occupation": N_("Occupation"),
    "acquisition_channel": N_("Acquisition channel"),
    "acquisition_campaign": N_("Acquisition campaign"),
    "first_seen_at": N_("First seen (signed up)"),
    "consent_email": N_("Consent: email"),
    "consent_sms": N_("Consent: SMS"),
    "consent_push": N_("Consent: push"),
    "consent_phone": N_("Consent: phone calls"),
    "consent_whatsapp": N_("Consent: WhatsApp"),
    "consent_post": N_("Consent: post"),
    "consent_wechat": N_("Consent: WeChat"),
    "consent_wecom": N_("Consent: WeCom"),
    "consent_source": N_("Where consent was given"),
    "attributes": N_("Custom attributes (JSON)"),
    "event_id": N_("Event id"),
    "type": N_("Event type"),
    "timestamp": N_("Time"),
    "channel": N_("Channel"),
    "properties": N_("Properties (JSON)"),
    "order_id": N_("Order number"),
    "ordered_at": N_("Order time"),
    "status": N_("Order status"),
    "refunded_at": N_("Refund time"),
    "currency": N_("Currency"),
    "total": N_("Order total"),
    "campaign": N_("Campaign"),
    "sku": N_("SKU"),
    "quantity": N_("Quantity"),
    "unit_price": N_("Unit price"),
    "name": N_("Product name"),
    "category": N_("Category"),
    "price": N_("Price"),
    "cost": N_("Cost"),
    "active": N_("On sale"),
    "in_stock": N_("In stock"),
}


def file_size(size: int) -> str:
    """A file's size as people read it: 820 B, 12.5 KB, 3.2 MB, 1.1 GB (the same in Chinese)."""
    for unit, step in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= step:
            return f"{size / step:,.1f} {unit}"
    return f"{size} B"


KEEP = ""  # the mapping choice "keep the column as it is" (an attribute or a property)
LEAVE_OUT = "-"  # the mapping choice "leave the column out" (clm.core.files.SKIP, `--map COLUMN=-`)


def runner(app: Any) -> ImportRunner:
    """The app's import runner (one per server process)."""
    if getattr(app.state, "import_runner", None) is None:
        app.state.import_runner = ImportRunner(app.state.engine)
    return app.state.import_runner


def _job(console: Console, job_id: int) -> ImportJob | None:
    try:
        return get_job(console.engine, job_id)
    except NotFound:
        return None


def _not_found(console: Console) -> Response:
    return console.render("not_found.html", 404)


def _list(console: Console, status: int = 200, **context: Any) -> Response:
    console.crumbs = [(N_("Imports"), None)]
    return console.render(
        "imports.html",
        status,
        jobs=list_jobs(console.engine),
        kinds=KIND_NAMES,
        statuses=STATUS_NAMES,
        can_import=console.user is not None and console.user.can("write"),
        max_size=file_size(max_upload_bytes()),
        **context,
    )


@router.get("/imports", response_class=HTMLResponse)
def imports_page(console: Annotated[Console, Depends(page("read", "imports"))]) -> Response:
    return _list(console)


class UploadRefused(Exception):
    def __init__(self, reason: str, status: int = 422) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


@dataclass
class Upload:
    fields: dict[str, str]
    file_name: str
    stored_name: str
    size: int


async def receive_upload(request: Request, folder: Path, limit: int) -> Upload:
    """The request's form with its file copied under `folder`, a megabyte at a time.

    The form is parsed once for the whole app (the NUL-character guard reads every form):
    Starlette writes an uploaded file to a temporary file as it arrives, past its first
    megabyte, so a file of any size passes through without being held in memory."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    sent = form.get("file")
    if not isinstance(sent, UploadFile) or not sent.filename:
        raise UploadRefused("no file was chosen")
    file_name = Path(sent.filename.replace("\\", "/")).name
    stored_name = stored_name_for(file_name)

    def copy() -> int:
        sent.file.seek(0, 2)
        size = sent.file.tell()
        if size > limit:
            raise UploadRefused("too large", 413)
        sent.file.seek(0)
        with open(folder / stored_name, "wb") as out:
            shutil.copyfileobj(sent.file, out, 1 << 20)
        return size

    size = await run_in_threadpool(copy)
    await sent.close()
    return Upload(fields, file_name, stored_name, size)


UPLOAD_REASONS = {
    "no file was chosen": N_("Choose a file to import."),
    "too large": N_("The file is larger than this server accepts."),
}


@router.post("/imports/upload", response_class=HTMLResponse)
async def imports_upload(
    request: Request, console: Annotated[Console, Depends(page("write", "imports"))]
) -> Response:
    """Save the file, record it, and go on to its columns."""
    assert console.user is not None
    folder = import_dir() / "uploads"
    try:
        upload = await receive_upload(request, folder, max_upload_bytes())
    except UploadRefused as refused:
        return _list(console, refused.status, error=UPLOAD_REASONS.get(refused.reason, refused.reason))
    kind = upload.fields.get("kind", "")
    try:
        job = await run_in_threadpool(
            create_upload,
            console.engine,
            kind,
            upload.file_name,
            upload.stored_name,
            upload.size,
            console.user.actor,
            console.user.id,
        )
    except ClmError as exc:
        (folder / upload.stored_name).unlink(missing_ok=True)
        return _list(console, 422, error=exc.message, kind=kind)
    await run_in_threadpool(discard_stale_uploads, console.engine, "system")
    return console.redirect(f"/imports/{job.id}")


def _columns_context(
    console: Console, job: ImportJob, mapping: dict[str, str], encoding: str, sheet: str
) -> dict[str, Any]:
    preview = preview_file(job.kind, job.upload_path, job.format, mapping, encoding or None, sheet or None)
    sheets = workbook_sheets(job.upload_path) if job.format == "xlsx" and not preview.problem else []
    chosen = set(mapping.values()) | {
        c for c in preview.columns if c in FIELDS[job.kind] and c not in mapping
    }
    return {
        "job": job,
        "preview": preview,
        "mapping": mapping,
        "fields": FIELDS[job.kind],
        "field_names": FIELD_NAMES,
        "missing": [f for f in REQUIRED[job.kind] if f not in chosen],
        "encoding": encoding,
        "encodings": ENCODINGS,
        "sheet": sheet,
        "sheets": sheets,
        "kinds": KIND_NAMES,
        "plain": is_plain,
        "file_size": file_size,
        "leave_out": LEAVE_OUT,
    }


@router.get("/imports/{job_id}", response_class=HTMLResponse)
def import_page(job_id: int, console: Annotated[Console, Depends(page("read", "imports"))]) -> Response:
    job = _job(console, job_id)
    if job is None:
        return _not_found(console)
    console.crumbs = [(N_("Imports"), "/imports"), (N_("Import"), None)]
    if job.status == "uploaded" and console.user is not None and console.user.can("write"):
        console.crumbs[-1] = (N_("Match the columns"), None)
        preview = preview_file(job.kind, job.upload_path, job.format, {})
        mapping = suggest_mapping(job.kind, preview.columns)
        return console.render("import_columns.html", **_columns_context(console, job, mapping, "", ""))
    return console.render("import_job.html", **_job_context(job))


def _job_context(job: ImportJob) -> dict[str, Any]:
    return {
        "job": job,
        "kinds": KIND_NAMES,
        "statuses": STATUS_NAMES,
        "counter_names": COUNTER_NAMES,
        "field_names": FIELD_NAMES,
        "file_size": file_size,
    }


async def _choices(request: Request, job: ImportJob) -> tuple[dict[str, str], str, str]:
    """The mapping, encoding and sheet the columns form sends (`map:<column>` = field or KEEP)."""
    form = await request.form()
    mapping = {}
    allowed = {*FIELDS[job.kind], LEAVE_OUT}
    for key, value in form.items():
        if key.startswith("map:") and isinstance(value, str) and value != KEEP and value in allowed:
            mapping[key[4:]] = value
    encoding = str(form.get("encoding") or "")
    with suppress(ClmError):
        check_encoding(encoding)
        return mapping, encoding if encoding in ENCODINGS else "", str(form.get("sheet") or "")[:255]
    return mapping, "", str(form.get("sheet") or "")[:255]


@router.post("/imports/{job_id}/preview", response_class=HTMLResponse)
async def import_preview(
    request: Request, job_id: int, console: Annotated[Console, Depends(page("write", "imports"))]
) -> Response:
    """The preview table again for the columns as now chosen (htmx, on every change)."""
    job = _job(console, job_id)
    if job is None:
        return _not_found(console)
    mapping, encoding, sheet = await _choices(request, job)
    context = await run_in_threadpool(_columns_context, console, job, mapping, encoding, sheet)
    return console.render("_import_preview.html", **context)


@router.post("/imports/{job_id}/start", response_class=HTMLResponse)
async def import_start(
    request: Request, job_id: int, console: Annotated[Console, Depends(page("write", "imports"))]
) -> Response:
    """Queue the import with the chosen columns; the runner starts it at once."""
    assert console.user is not None
    job = _job(console, job_id)
    if job is None:
        return _not_found(console)
    mapping, encoding, sheet = await _choices(request, job)
    context = await run_in_threadpool(_columns_context, console, job, mapping, encoding, sheet)
    if job.status != "uploaded":
        return console.redirect(f"/imports/{job.id}")
    if context["preview"].problem or context["missing"]:
        console.crumbs = [(N_("Imports"), "/imports"), (N_("Match the columns"), None)]
        return console.render("import_columns.html", 422, **context, refused=True)
    try:
        await run_in_threadpool(
            queue_job, console.engine, job.id, mapping, encoding or None, sheet or None, console.user.actor
        )
    except ClmError:
        return console.redirect(f"/imports/{job.id}")
    runner(request.app).wake()
    return console.redirect(f"/imports/{job.id}")


@router.post("/imports/{job_id}/discard")
def import_discard(job_id: int, console: Annotated[Console, Depends(page("write", "imports"))]) -> Response:
    assert console.user is not None
    job = _job(console, job_id)
    if job is None:
        return _not_found(console)
    discard_upload(console.engine, job.id, console.user.actor)
    return console.redirect("/imports")


@router.post("/imports/{job_id}/retry")
def import_retry(
    request: Request, job_id: int, console: Annotated[Console, Depends(page("write", "imports"))]
) -> Response:
    assert console.user is not None
    job = _job(console, job_id)
    if job is None:
        return _not_found(console)
    with suppress(ClmError):  # not failed, or its file is gone: the page says what it is
        retry_job(console.engine, job.id, console.user.actor)
        runner(request.app).wake()
    return console.redirect(f"/imports/{job.id}")


@router.get("/imports/{job_id}/progress", response_class=HTMLResponse)
def import_progress(job_id: int, console: Annotated[Console, Depends(page("read", "imports"))]) -> Response:
    """The progress and result block (htmx polls it every second while the import runs)."""
    job = _job(console, job_id)
    if job is None:
        return _not_found(console)
    return console.render("_import_progress.html", **_job_context(job))


@router.get("/imports/{job_id}/rejections.csv")
def import_rejections(
    job_id: int, console: Annotated[Console, Depends(page("write", "imports"))]
) -> Response:
    """Every row the import did not store (and every row kept without a field), as the file had
    them, after their line and the reason: UTF-8 with a byte-order mark, for Excel. Recorded."""
    assert console.user is not None
    job = _job(console, job_id)
    if job is None:
        return _not_found(console)
    path = job.rejections_path
    if path is None or not path.exists():
        return _not_found(console)
    with console.engine.begin() as conn:
        record_audit(
            conn,
            console.user.actor,
            "import.rejections_download",
            "import_job",
            str(job.id),
            {"file": job.file_name, "rejected": job.rejected, "warned": job.warned},
        )
    stem = Path(job.file_name).name.split(".")[0] or "import"
    return FileResponse(
        path,
        media_type="text/csv; charset=utf-8",
        filename=f"{stem}.rejections.csv",
        headers={"Cache-Control": "no-store"},
    )
