"""The segment condition builder (`/segments/new`, `/segments/{id}/edit`): groups and rules over
the segment field space (`clm.segments.fields`), the same condition as text beside it, and the
count and a sample of matching customers as it changes (htmx, debounced). Both forms are one
condition: the page converts between them on the server (`clm.segments.builder`), and saving
calls the same service as the API."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from clm.conditions import ConditionError, parse_text, to_text
from clm.core.errors import ClmError, InvalidInput, NotFound
from clm.lifecycle.service import current_model
from clm.segments.builder import from_builder, to_builder
from clm.segments.fields import FUNCTIONS, GROUPS, field_space
from clm.segments.service import (
    Build,
    Segment,
    check_condition,
    create_segment,
    list_segments,
    preview,
    segment_by_id,
    update_segment,
)
from clm.web.access import Console, page
from clm.web.frame import sees_contact_details
from clm.web.i18n import N_, translations
from clm.web.menu import BY_KEY

router = APIRouter(include_in_schema=False, tags=["console"])

SAMPLE = 10
MAX_TEXT = 10_000
DEFAULT_TEXT = "events(product_view, last 14d) >= 3 and not purchased(last 14d)"

GROUP_LABELS = {
    "profile": N_("Profile"),
    "attributes": N_("Custom attributes"),
    "features": N_("Behaviour and orders"),
    "lifecycle": N_("Lifecycle"),
    "value": N_("Value (RFM, CLV)"),
    "churn": N_("Churn risk"),
    "consent": N_("Consent"),
}
FIELD_LABELS = {
    "days_since_first_seen": N_("Days since first seen"),
    "days_since_last_activity": N_("Days since last activity"),
    "days_since_last_purchase": N_("Days since last purchase"),
    "orders": N_("Orders"),
    "refunds": N_("Refunded orders"),
    "revenue": N_("Revenue"),
    "margin": N_("Margin"),
    "aov": N_("Average order value"),
    "purchase_gap_days": N_("Own purchase gap (days)"),
    "shop_purchase_gap_days": N_("Shop's purchase gap (days)"),
    "orders_90d": N_("Orders in 90 days"),
    "revenue_365d": N_("Revenue in 365 days"),
    "categories": N_("Categories bought"),
    "views_30d": N_("Views in 30 days"),
    "product_views": N_("Product views"),
    "carts_30d": N_("Add-to-carts in 30 days"),
    "carts": N_("Add-to-carts"),
    "email_opens_30d": N_("Email opens in 30 days"),
    "email_clicks_30d": N_("Email clicks in 30 days"),
    "events_30d": N_("Activity in 30 days"),
    "inquiries": N_("Inquiries"),
    "last_nps": N_("Last NPS answer"),
    "last_csat": N_("Last CSAT answer"),
    "open_tickets": N_("Open tickets"),
    "age": N_("Age"),
    "gender": N_("Gender"),
    "city": N_("City"),
    "region": N_("Region"),
    "country": N_("Country"),
    "timezone": N_("Time zone"),
    "occupation": N_("Occupation"),
    "acquisition_channel": N_("Acquisition channel"),
    "acquisition_campaign": N_("Acquisition campaign"),
    "attr.": N_("Custom attribute"),
    "email": N_("Email"),
    "phone": N_("Phone"),
    "external_id": N_("External id"),
    "first_name": N_("Given name"),
    "last_name": N_("Family name"),
    "stage": N_("Lifecycle stage"),
    "rfm_segment": N_("RFM segment"),
    "clv": N_("Predicted CLV"),
    "p_alive": N_("P(alive)"),
    "expected_purchases": N_("Expected purchases"),
    "expected_spend": N_("Expected spend"),
    "rfm_r": N_("RFM recency score"),
    "rfm_f": N_("RFM frequency score"),
    "rfm_m": N_("RFM monetary score"),
    "churn_risk": N_("Churn probability"),
    "churn_band": N_("Churn risk band"),
}
CONSENT_LABELS = {
    "email": N_("Email"),
    "sms": N_("SMS"),
    "push": N_("Push"),
    "phone": N_("Phone"),
    "whatsapp": N_("WhatsApp"),
    "wechat": N_("WeChat"),
    "wecom": N_("WeCom"),
    "mail": N_("Post"),
}
FUNCTION_LABELS = {
    "events": N_("Events"),
    "orders": N_("Orders"),
    "spent": N_("Spent"),
    "purchased": N_("Purchased"),
    "in_segment": N_("In segment"),
}
OPERATOR_LABELS = {
    "=": N_("is"),
    "!=": N_("is not"),
    "<": "<",
    "<=": "≤",
    ">": ">",
    ">=": "≥",
    "in": N_("is one of"),
    "not in": N_("is none of"),
    "is null": N_("is empty"),
    "is not null": N_("is filled in"),
    "is true": N_("is true"),
}


def _label(console: Console, name: str) -> str:
    gettext = translations(console.locale).gettext
    if name.startswith("consent."):
        channel = name[8:]
        return gettext("Consent: %(channel)s") % {"channel": gettext(CONSENT_LABELS.get(channel, channel))}
    return gettext(FIELD_LABELS[name]) if name in FIELD_LABELS else name


def builder_config(console: Console, segment: Segment | None) -> dict[str, Any]:
    """What the builder's script needs: the field space with labels, the functions, the
    segments it may read, and the words it shows."""
    gettext = translations(console.locale).gettext
    model = current_model(console.engine)
    fields = [
        {
            "name": f.name,
            "kind": f.kind,
            "group": f.group,
            "label": _label(console, f.name),
            "choices": list(f.choices),
        }
        for f in field_space(tuple(model.keys))
    ]
    others = [s.name for s in list_segments(console.engine) if segment is None or s.id != segment.id]
    return {
        "fields": fields,
        "groups": [{"key": g, "label": gettext(GROUP_LABELS[g])} for g in GROUPS],
        "functions": [
            {
                "name": f.name,
                "kind": f.kind,
                "label": gettext(FUNCTION_LABELS[f.name]),
                "types": f.types,
                "filters": list(f.filters),
                "eventTypes": list(f.event_types),
            }
            for f in FUNCTIONS
        ],
        "operators": {op: gettext(label) for op, label in OPERATOR_LABELS.items()},
        "segments": others,
    }


def field_kinds() -> dict[str, str]:
    return {f.name: f.kind for f in field_space()}


def condition_text(mode: str, tree: str, where: str) -> str:
    """The condition the form holds, as text: typed (`mode` text) or built (`tree`, JSON)."""
    if mode == "text":
        if not where.strip():
            raise InvalidInput("the condition is empty", "where")
        return where
    try:
        raw = json.loads(tree or "null")
    except ValueError:
        raise InvalidInput("the builder sent no readable tree", "tree") from None
    return to_text(from_builder(raw, field_kinds()))


def _leaves(node: Any) -> list[dict[str, Any]]:
    if not isinstance(node, dict):
        return []
    if node.get("kind") == "group":
        return [leaf for item in node.get("items") or [] for leaf in _leaves(item)]
    return [node]


def locate(console: Console, tree: str, error: InvalidInput) -> dict[str, Any]:
    """Which rule of the builder is wrong: each rule is checked alone, the first that fails is it."""
    try:
        raw = json.loads(tree or "null")
    except ValueError:
        return {}
    kinds = field_kinds()
    for leaf in _leaves(raw):
        try:
            check_condition(console.engine, to_text(from_builder(leaf, kinds)))
        except InvalidInput as exc:
            return {"node": leaf.get("id"), "message": getattr(exc, "detail", exc.reason)}
    return {}


def _error(exc: InvalidInput) -> dict[str, Any]:
    pos = getattr(exc, "pos", -1)
    return {"message": getattr(exc, "detail", None) or exc.reason, "pos": pos}


@router.post("/segments/preview", response_class=HTMLResponse)
def segment_preview(
    console: Annotated[Console, Depends(page("read", "segments"))],
    mode: Annotated[str, Form(max_length=10)] = "builder",
    tree: Annotated[str, Form(max_length=200_000)] = "",
    where: Annotated[str, Form(max_length=MAX_TEXT)] = "",
) -> Response:
    """The count and a sample of the customers the form's condition selects now (nothing saved)."""
    started = time.perf_counter()
    error: dict[str, Any] | None = None
    found = None
    text = ""
    try:
        text = condition_text(mode, tree, where)
        found = preview(console.engine, text, sample=SAMPLE)
    except InvalidInput as exc:
        error = _error(exc)
        if mode != "text":
            error.update(locate(console, tree, exc))
    response = console.render(
        "segments/_preview.html",
        found=found,
        error=error,
        text=text,
        ms=round((time.perf_counter() - started) * 1000),
        full=sees_contact_details(console),
    )
    # not `error`: htmx logs any event whose detail has a truthy `error` as a failure of its own
    detail = {"problem": error, "text": text if mode != "text" else None}
    response.headers["HX-Trigger"] = json.dumps({"preview-result": detail}, ensure_ascii=True)
    return response


@router.post("/segments/condition")
def segment_condition(
    console: Annotated[Console, Depends(page("read", "segments"))],
    mode: Annotated[str, Form(max_length=10)] = "builder",
    tree: Annotated[str, Form(max_length=200_000)] = "",
    where: Annotated[str, Form(max_length=MAX_TEXT)] = "",
) -> Response:
    """Switch the form between builder and text: the text of a tree (`mode` builder), or the
    tree of a text (`mode` text), or the error with its column; nothing is saved."""
    try:
        if mode == "text":
            return JSONResponse({"tree": to_builder(parse_text(where), field_kinds())})
        return JSONResponse({"text": condition_text("builder", tree, "")})
    except InvalidInput as exc:
        return JSONResponse({"error": _error(exc)}, status_code=422)


def _page(
    console: Console,
    segment: Segment | None,
    *,
    status: int = 200,
    name: str = "",
    description: str = "",
    mode: str = "builder",
    tree: Any = None,
    where: str = "",
    error: str | None = None,
) -> Response:
    label = segment.name if segment else N_("New segment")
    console.crumbs = [(N_("Segments"), "/segments"), (label, None)]
    if tree is None:
        try:
            tree = to_builder(parse_text(where or DEFAULT_TEXT), field_kinds())
        except ConditionError:
            tree, mode = {"kind": "group", "op": "and", "not": False, "items": []}, "text"
    return console.render(
        "segments/builder.html",
        status,
        segment=segment,
        name=name,
        description=description,
        config=builder_config(console, segment),
        start={"mode": mode, "tree": tree, "text": where or DEFAULT_TEXT},
        error=error,
        may_write=console.user is not None and console.user.can("write"),
        section=BY_KEY["segments"],
    )


@router.get("/segments/new", response_class=HTMLResponse)
def segment_new(console: Annotated[Console, Depends(page("read", "segments"))]) -> Response:
    """An empty builder (a viewer may explore conditions here; only saving needs the right)."""
    return _page(console, None)


@router.get("/segments/{segment_id}/edit", response_class=HTMLResponse)
def segment_edit(console: Annotated[Console, Depends(page("read", "segments"))], segment_id: int) -> Response:
    try:
        segment = segment_by_id(console.engine, segment_id)
    except NotFound:
        console.crumbs = [(N_("Segments"), "/segments"), (N_("Not found"), None)]
        return console.render("not_found.html", 404)
    if segment.kind == "static":
        return console.redirect(f"/segments/{segment.id}")
    return _page(
        console, segment, name=segment.name, description=segment.description, where=segment.where or ""
    )


def build_nothing(name: str, members: int) -> Build:
    return Build(name, members, 0, 0)


def _save(
    console: Console,
    segment_id: int | None,
    name: str,
    description: str,
    mode: str,
    tree: str,
    where: str,
) -> Response:
    segment = None
    try:
        if segment_id is not None:
            segment = segment_by_id(console.engine, segment_id)
        text = condition_text(mode, tree, where)
        if segment is None:
            saved, build = create_segment(console.engine, name.strip(), description=description, where=text)
        else:
            saved, change = update_segment(console.engine, segment.name, description=description, where=text)
            build = change if change is not None else build_nothing(saved.name, saved.members)
    except NotFound:
        console.crumbs = [(N_("Segments"), "/segments"), (N_("Not found"), None)]
        return console.render("not_found.html", 404)
    except ClmError as exc:
        try:
            kept = json.loads(tree) if mode != "text" and tree else None
        except ValueError:
            kept = None
        return _page(
            console,
            segment,
            status=422,
            name=name,
            description=description,
            mode=mode,
            tree=kept,
            where=where if mode == "text" else "",
            error=getattr(exc, "detail", None) or getattr(exc, "reason", None) or exc.message,
        )
    return console.redirect(f"/segments/{saved.id}?saved=1&entered={build.entered}&exited={build.exited}")


@router.post("/segments/new", response_class=HTMLResponse)
async def segment_create(
    console: Annotated[Console, Depends(page("write", "segments"))],
    name: Annotated[str, Form(max_length=200)] = "",
    description: Annotated[str, Form(max_length=2000)] = "",
    mode: Annotated[str, Form(max_length=10)] = "builder",
    tree: Annotated[str, Form(max_length=200_000)] = "",
    where: Annotated[str, Form(max_length=MAX_TEXT)] = "",
) -> Response:
    """Save a new dynamic segment; it is built at once and the page says who entered."""
    return await run_in_threadpool(_save, console, None, name, description, mode, tree, where)


@router.post("/segments/{segment_id}/edit", response_class=HTMLResponse)
async def segment_update(
    console: Annotated[Console, Depends(page("write", "segments"))],
    segment_id: int,
    description: Annotated[str, Form(max_length=2000)] = "",
    mode: Annotated[str, Form(max_length=10)] = "builder",
    tree: Annotated[str, Form(max_length=200_000)] = "",
    where: Annotated[str, Form(max_length=MAX_TEXT)] = "",
) -> Response:
    """Save a changed condition; the segment is rebuilt and the page says who entered and left."""
    return await run_in_threadpool(_save, console, segment_id, "", description, mode, tree, where)
