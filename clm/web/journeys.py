"""The journeys pages: the list (`/journeys`: status, version, customers in it now, entered,
converted and revenue over a period), a journey's canvas with the numbers on every node and edge
(`/journeys/{name}`), its YAML beside it (saved as a new version, as the CLI and API save it), and
going live (`/journeys/{name}/go-live`: the audience, the guardrails, missing references, a test
send of each message, then a confirmed switch). Every figure comes from clm.journeys' services,
the same that answer the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Body, Depends, Form, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from clm.core.errors import ClmError, InvalidInput, NotFound
from clm.core.settings import settings
from clm.core.timeutil import utcnow
from clm.journeys.canvas import (
    END,
    TRIGGER,
    CanvasNumbers,
    NodeNumbers,
    canvas_numbers,
    journey_graph,
    journey_summaries,
)
from clm.journeys.checks import MissingReferences, missing_references
from clm.journeys.definition import SendStep, definition_from_dict
from clm.journeys.service import enable_preview, get_journey, presets, save_definition, set_status
from clm.journeys.step_models import editor_schemas
from clm.journeys.testsend import send_test
from clm.web.access import Console, page
from clm.web.i18n import N_, render
from clm.web.journey_canvas import layout
from clm.web.menu import BY_KEY

router = APIRouter(include_in_schema=False, tags=["console"])

PERIODS = (1, 7, 30, 90)
DEFAULT_PERIOD = 30
STATUS_NAMES = {
    "draft": N_("Draft"),
    "live": N_("Live"),
    "paused": N_("Paused"),
    "archived": N_("Archived"),
}
KIND_NAMES = {
    "trigger": N_("Trigger"),
    "send": N_("Send"),
    "wait": N_("Wait"),
    "branch": N_("Branch"),
    "split": N_("A/B split"),
    "update": N_("Update attribute"),
    "task": N_("Task"),
    "exit": N_("Exit"),
    "end": N_("End"),
}
OUTCOME_NAMES = {
    "then": N_("yes"),
    "else": N_("no"),
    "event": N_("did it"),
    "timeout": N_("timed out"),
    "holdout": N_("holdout"),
}
Name = Annotated[str, Query(max_length=100)]


def _period(days: int | None) -> int:
    return days if days in PERIODS else DEFAULT_PERIOD


def dump_yaml(raw: dict[str, Any]) -> str:
    """A definition as YAML in the order people write it (name, title, trigger, …, steps)."""
    order = ("name", "title", "description", "trigger", "reentry", "exit_when", "goal", "steps")
    ordered = {k: raw[k] for k in order if k in raw} | {k: v for k, v in raw.items() if k not in order}
    return yaml.safe_dump(ordered, allow_unicode=True, sort_keys=False, width=100)


@router.get("/journeys", response_class=HTMLResponse)
def journeys_list(
    console: Annotated[Console, Depends(page("read", "journeys"))],
    days: Annotated[int | None, Query(ge=1, le=3650)] = None,
) -> Response:
    console.crumbs = [(N_("Journeys"), None)]
    period = _period(days)
    now = utcnow()
    rows = journey_summaries(console.engine, now - timedelta(days=period), now)
    return console.render(
        "journeys/list.html",
        rows=rows,
        days=period,
        periods=PERIODS,
        status_names=STATUS_NAMES,
        presets=sorted(presets().values(), key=lambda d: d.name),
        can_write=console.user is not None and console.user.can("write"),
        section=BY_KEY["journeys"],
    )


def _canvas_context(console: Console, name: str, period: int) -> dict[str, Any]:
    journey, d = get_journey(console.engine, name)
    now = utcnow()
    numbers = canvas_numbers(console.engine, name, now - timedelta(days=period), now, now)
    graph = journey_graph(d)
    drawn = layout(graph, {sid: len(s.arms) for sid, s in numbers.splits.items()})
    return {
        "journey": journey,
        "definition": d,
        "graph": graph,
        "drawn": drawn,
        "numbers": numbers,
        "days": period,
        "periods": PERIODS,
        "status_names": STATUS_NAMES,
        "kind_names": KIND_NAMES,
        "outcome_names": OUTCOME_NAMES,
        "TRIGGER": TRIGGER,
        "END": END,
        "can_write": console.user is not None and console.user.can("write"),
    }


@router.get("/journeys/new", response_class=HTMLResponse)
def journey_new(
    console: Annotated[Console, Depends(page("write", "journeys"))],
    preset: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    console.crumbs = [(N_("Journeys"), "/journeys"), (N_("New journey"), None)]
    ready = presets()
    text = dump_yaml(ready[preset].raw) if preset in ready else dump_yaml(_BLANK)
    return console.render("journeys/new.html", text=text, presets=sorted(ready), preset=preset)


_BLANK: dict[str, Any] = {
    "name": "my-journey",
    "title": "My journey",
    "trigger": {"event": "add_to_cart"},
    "reentry": {"every_days": 7},
    "exit_when": {"event": "purchase"},
    "goal": {"event": "purchase", "within_days": 7},
    "steps": [{"id": "wait", "wait": {"hours": 4}}, {"id": "remind", "send": {"template": "cart-reminder"}}],
}


def _parse_yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        raise InvalidInput(str(getattr(exc, "problem", None) or exc), where) from None


def _problems(exc: ClmError) -> list[str]:
    if isinstance(exc, MissingReferences):
        return [f"{m.where}: {m.problem}" for m in exc.missing]
    return [exc.message]


@router.post("/journeys/new", response_class=HTMLResponse)
def journey_create(
    console: Annotated[Console, Depends(page("write", "journeys"))],
    definition: Annotated[str, Form(max_length=200_000)] = "",
) -> Response:
    console.crumbs = [(N_("Journeys"), "/journeys"), (N_("New journey"), None)]
    try:
        raw = _parse_yaml(definition)
        if isinstance(raw, dict) and raw.get("name"):
            try:
                get_journey(console.engine, str(raw["name"]))
            except NotFound:
                pass
            else:
                raise InvalidInput(f"a journey named {raw['name']!r} exists already; edit it there", "name")
        name, _ = save_definition(console.engine, raw)
    except ClmError as exc:
        return console.render(
            "journeys/new.html",
            422,
            text=definition,
            presets=sorted(presets()),
            preset="",
            errors=_problems(exc),
        )
    return console.redirect(f"/journeys/{name}")


@router.get("/journeys/{name}", response_class=HTMLResponse)
def journey_canvas(
    console: Annotated[Console, Depends(page("read", "journeys"))],
    name: str,
    days: Annotated[int | None, Query(ge=1, le=3650)] = None,
    saved: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    try:
        context = _canvas_context(console, name, _period(days))
    except NotFound:
        return console.render("not_found.html", 404)
    console.crumbs = [(N_("Journeys"), "/journeys"), (context["journey"].title, None)]
    text = dump_yaml(context["definition"].raw)
    return console.render("journeys/canvas.html", **context, text=text, saved=saved, **_editor(context))


def _editor(context: dict[str, Any]) -> dict[str, Any]:
    """What the step editor starts from: the definition as data and each step kind's JSON Schema."""
    if not context["can_write"]:
        return {}
    return {"editor": {"definition": context["definition"].raw, "schemas": editor_schemas(SendStep)}}


def _draw(console: Console, raw: dict[str, Any]) -> str:
    """The canvas of a draft (not saved): its graph laid out, its numbers still empty."""
    d = definition_from_dict(raw)
    graph = journey_graph(d)
    now = utcnow()
    numbers = CanvasNumbers(d.name, now, now, 0, {n.id: NodeNumbers() for n in graph.nodes}, {}, {}, 0.0)
    context = {
        "drawn": layout(graph),
        "numbers": numbers,
        "kind_names": KIND_NAMES,
        "outcome_names": OUTCOME_NAMES,
        "TRIGGER": TRIGGER,
        "END": END,
    }
    return render(console.locale, "journeys/_canvas.html", context)


@router.post("/journeys/{name}/draft")
def journey_draft(
    console: Annotated[Console, Depends(page("write", "journeys"))],
    name: str,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> Response:
    """Check a draft as the editor changes it, saving nothing: from `definition` (the editor's
    data) or `yaml` (the text beside the canvas); answers the draft as YAML and as data, its
    canvas, and what is wrong with it (`errors`: the loader's message, or each missing name).
    A draft that does not load is an answer too (200, `ok` false): the editor is half way."""
    body = body or {}
    errors: list[str] = []
    raw: Any = body.get("definition")
    try:
        if isinstance(body.get("yaml"), str):
            raw = _parse_yaml(body["yaml"])
        if isinstance(raw, dict) and raw.get("name") != name:
            raise InvalidInput(f"stays {name!r}: a new name is a new journey", "name")
        d = definition_from_dict(raw)
    except ClmError as exc:
        return JSONResponse({"ok": False, "errors": [exc.message], "definition": raw})
    errors = [f"{m.where}: {m.problem}" for m in missing_references(console.engine, d)]
    return JSONResponse(
        {
            "ok": not errors,
            "errors": errors,
            "definition": raw,
            "yaml": dump_yaml(raw),
            "svg": _draw(console, raw),
        }
    )


@router.post("/journeys/{name}/definition", response_class=HTMLResponse)
def journey_save(
    console: Annotated[Console, Depends(page("write", "journeys"))],
    name: str,
    definition: Annotated[str, Form(max_length=200_000)] = "",
) -> Response:
    """Save the edited YAML as a new version of this journey (its name cannot change here)."""
    try:
        get_journey(console.engine, name)
    except NotFound:
        return console.render("not_found.html", 404)
    try:
        raw = _parse_yaml(definition)
        if isinstance(raw, dict) and raw.get("name") != name:
            raise InvalidInput(f"stays {name!r}: a new name is a new journey (New journey)", "name")
        _, version = save_definition(console.engine, raw)
    except ClmError as exc:
        context = _canvas_context(console, name, DEFAULT_PERIOD)
        console.crumbs = [(N_("Journeys"), "/journeys"), (context["journey"].title, None)]
        return console.render("journeys/canvas.html", 422, **context, text=definition, errors=_problems(exc))
    return console.redirect(f"/journeys/{name}?saved={version}")


def _guardrails() -> dict[str, str]:
    conf = settings()
    return {"frequency_cap": conf.frequency_cap, "quiet_hours": conf.quiet_hours}


def _golive_context(console: Console, name: str) -> dict[str, Any]:
    preview = enable_preview(console.engine, name)
    journey, d = get_journey(console.engine, name)
    sends = [s for s in d.steps if s.action == "send"]
    per_day = None
    if preview.recent_entrants is not None and preview.recent_days:
        per_day = preview.recent_entrants / preview.recent_days
    return {
        "journey": journey,
        "definition": d,
        "preview": preview,
        "per_day": per_day,
        "sends": sends,
        "guardrails": _guardrails(),
        "status_names": STATUS_NAMES,
        "kind_names": KIND_NAMES,
        "can_write": console.user is not None and console.user.can("write"),
    }


@router.get("/journeys/{name}/go-live", response_class=HTMLResponse)
def journey_golive(console: Annotated[Console, Depends(page("read", "journeys"))], name: str) -> Response:
    try:
        context = _golive_context(console, name)
    except NotFound:
        return console.render("not_found.html", 404)
    console.crumbs = [
        (N_("Journeys"), "/journeys"),
        (context["journey"].title, f"/journeys/{name}"),
        (N_("Go live"), None),
    ]
    return console.render("journeys/golive.html", **context)


@router.post("/journeys/{name}/test-send", response_class=HTMLResponse)
async def journey_test_send(
    console: Annotated[Console, Depends(page("write", "journeys"))],
    name: str,
    step: Annotated[str, Form(max_length=100)] = "",
    address: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    assert console.user is not None
    lang = "zh" if console.locale.startswith("zh") else "en"
    error, result = None, None
    try:
        result = await run_in_threadpool(
            send_test, console.engine, name, step, address, actor=console.user.actor, lang=lang
        )
    except ClmError as exc:
        error = exc.message
    context = await run_in_threadpool(_golive_context, console, name)
    console.crumbs = [
        (N_("Journeys"), "/journeys"),
        (context["journey"].title, f"/journeys/{name}"),
        (N_("Go live"), None),
    ]
    status = 422 if error else 200
    return console.render(
        "journeys/golive.html",
        status,
        **context,
        test=result,
        test_error=error,
        test_step=step,
        address=address,
    )


@router.post("/journeys/{name}/status", response_class=HTMLResponse)
def journey_status(
    console: Annotated[Console, Depends(page("write", "journeys"))],
    name: str,
    status: Annotated[str, Form(max_length=16)] = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """live (only with the confirmation box ticked, and refused while a reference is missing),
    paused (new sends stop at once: the dispatcher leaves a paused journey's messages queued),
    draft, archived."""
    try:
        get_journey(console.engine, name)
    except NotFound:
        return console.render("not_found.html", 404)
    error = None
    if status not in STATUS_NAMES:
        error = "status"
    elif status == "live" and confirm != "yes":
        error = "confirm"
    else:
        try:
            set_status(console.engine, name, status)
        except MissingReferences:
            error = "missing"
    if error is None:
        return console.redirect(f"/journeys/{name}")
    context = _golive_context(console, name)
    console.crumbs = [
        (N_("Journeys"), "/journeys"),
        (context["journey"].title, f"/journeys/{name}"),
        (N_("Go live"), None),
    ]
    return console.render("journeys/golive.html", 422, **context, status_error=error)
