"""The message templates pages (`/templates`): the list of ready-made and stored templates and an
editor for subject, HTML and text in Chinese and English side by side, with the variables a
template can use, a live preview for a customer the user picks (the HTML in a sandboxed frame,
the text beside it) and a test send to an address. Saving goes through the same model and
service as `clm templates add` and `POST /api/v1/templates`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData

from clm.auth.service import record_audit
from clm.channels.templates import (
    LANGUAGES,
    BrokenTemplate,
    MessageTemplate,
    get_template,
    list_templates,
    save_template,
    template_from_dict,
)
from clm.core.errors import ClmError, InvalidInput, NotFound
from clm.customers.service import list_customers
from clm.journeys.template_tools import VARIABLES, render_for, send_test
from clm.web.access import Console, page
from clm.web.i18n import N_

router = APIRouter(include_in_schema=False, tags=["console"])

PARTS = ("subject", "html", "text")
CHANNELS = ("email", "sms", "webhook")
VARIABLE_NOTES = {
    "customer.first_name": N_("Given name"),
    "customer.last_name": N_("Family name"),
    "customer.email": N_("Email address"),
    "customer.phone": N_("Mobile number"),
    "customer.city": N_("City"),
    "customer.birthday": N_("Birthday"),
    "customer.attr": N_("Custom attributes, e.g. customer.attr.plan"),
    "loyalty.tier_title": N_("Loyalty tier, e.g. loyalty.tier_title.zh"),
    "loyalty.balance": N_("Points balance"),
    "shop.name": N_("The shop’s name"),
    "shop.url": N_("The shop’s web address"),
    "event": N_("What started the journey, e.g. event.sku"),
    "cart": N_("Products in the cart: name, price, image_url, url"),
    "recommendations": N_("Recommended products: name, price, image_url, url, reason"),
    "coupon": N_("A coupon code for this customer"),
    "survey_link": N_("The survey’s link"),
    "unsubscribe_url": N_("One-click unsubscribe link (required in marketing messages)"),
    "track(url)": N_("A link that records the click, then opens url"),
    "variant": N_("The A/B arm the customer is in"),
    "journey": N_("The journey’s name"),
}
assert set(VARIABLE_NOTES) == set(VARIABLES)


def _crumbs(console: Console, name: str | None = None) -> None:
    """Messages / Templates (the template's own name is the page's heading)."""
    console.crumbs = [(N_("Messages"), "/templates"), (N_("Templates"), "/templates" if name else None)]


def _sample_customers(console: Console) -> list[Any]:
    return list_customers(console.engine, limit=20)


@router.get("/templates", response_class=HTMLResponse)
def templates_list(console: Annotated[Console, Depends(page("read", "messages"))]) -> Response:
    _crumbs(console)
    found = list_templates(console.engine)
    return console.render(
        "message_templates.html",
        templates=[t for t in found if isinstance(t, MessageTemplate)],
        broken=[t for t in found if isinstance(t, BrokenTemplate)],
        tab="templates",
    )


def _editor(
    console: Console,
    template: dict[str, Any],
    *,
    new: bool,
    status: int = 200,
    error: ClmError | None = None,
    saved: bool = False,
) -> Response:
    customers = _sample_customers(console)
    return console.render(
        "message_template.html",
        status,
        t=template,
        new=new,
        error=error,
        saved=saved,
        languages=LANGUAGES,
        parts=PARTS,
        channels=CHANNELS,
        variables=[(v, VARIABLE_NOTES[v]) for v in VARIABLES],
        customers=customers,
        customer_id=customers[0].id if customers else None,
        can_write=console.user is not None and console.user.can("write"),
        tab="templates",
    )


@router.get("/templates/new", response_class=HTMLResponse)
def template_new(console: Annotated[Console, Depends(page("read", "messages"))]) -> Response:
    _crumbs(console, N_("New template"))
    blank = {"name": "", "channel": "email", "description": "", "subject": {}, "text": {}, "html": {}}
    return _editor(console, blank, new=True)


@router.get("/templates/{name}", response_class=HTMLResponse)
def template_edit(
    console: Annotated[Console, Depends(page("read", "messages"))],
    name: str,
    saved: Annotated[bool, Query()] = False,
) -> Response:
    _crumbs(console, name)
    try:
        template = get_template(console.engine, name)
    except NotFound:
        return console.render("not_found.html", 404)
    except InvalidInput as exc:  # stored but broken: shown with its error, to be fixed here
        return _editor(console, _stored_raw(console, name), new=False, status=422, error=exc)
    return _editor(console, template.as_dict(), new=False, saved=saved)


def _stored_raw(console: Console, name: str) -> dict[str, Any]:
    from clm.channels.tables import message_templates

    with console.engine.connect() as conn:
        raw = conn.execute(
            select(message_templates.c.definition).where(message_templates.c.name == name)
        ).scalar()
    raw = dict(raw or {})
    texts: dict[str, Any] = {p: raw.get(p) if isinstance(raw.get(p), dict) else {} for p in PARTS}
    return {
        "name": name,
        "channel": raw.get("channel", "email"),
        "description": raw.get("description", ""),
        **texts,
    }


def _definition(form: FormData) -> dict[str, Any]:
    """The template as the editor's form holds it: empty texts left out, so a part written in
    one language only falls back to it (as in a YAML file)."""
    out: dict[str, Any] = {
        "name": str(form.get("name") or "").strip(),
        "channel": str(form.get("channel") or "email"),
        "description": str(form.get("description") or ""),
    }
    for part in PARTS:
        texts = {lang: str(form.get(f"{part}_{lang}") or "") for lang in LANGUAGES}
        texts = {lang: text.replace("\r\n", "\n") for lang, text in texts.items() if text.strip()}
        if texts or part == "text":
            out[part] = texts
    return out


def _parsed(form: FormData) -> MessageTemplate:
    return template_from_dict(_definition(form))


def _customer(form: FormData) -> int:
    raw = str(form.get("customer_id") or "").strip()
    if not raw.isdigit() or not 0 < int(raw) < 2**62:
        raise InvalidInput("pick a customer by id to preview the template for", "customer_id")
    return int(raw)


def _lang(form: FormData) -> str | None:
    lang = str(form.get("lang") or "")
    return lang if lang in LANGUAGES else None


@router.post("/templates/preview", response_class=HTMLResponse)
async def template_preview(console: Annotated[Console, Depends(page("read", "messages"))]) -> Response:
    """The editor's live preview (an htmx partial): the template as it stands in the form,
    rendered for the chosen customer, or the error that stops it."""
    form = await console.request.form()
    try:
        shown = render_for(console.engine, _parsed(form), _customer(form), _lang(form))
    except ClmError as exc:
        return console.render("_template_preview.html", error=exc)
    return console.render("_template_preview.html", shown=shown)


@router.post("/templates/save", response_class=HTMLResponse)
async def template_save(console: Annotated[Console, Depends(page("write", "messages"))]) -> Response:
    assert console.user is not None
    form = await console.request.form()
    new = form.get("new") == "1"
    try:
        template = _parsed(form)
        if new and template.name in {t.name for t in list_templates(console.engine)}:
            taken = f"a template named {template.name!r} exists already: open it to change it"
            raise InvalidInput(taken, "name")
    except ClmError as exc:
        _crumbs(console, str(form.get("name") or N_("New template")))
        return _editor(console, _definition(form), new=new, status=422, error=exc)
    save_template(console.engine, template)
    with console.engine.begin() as conn:
        record_audit(conn, console.user.actor, "template.save", "template", template.name, template.as_dict())
    return console.redirect(f"/templates/{template.name}?saved=1")


@router.post("/templates/test-send", response_class=HTMLResponse)
async def template_test_send(
    console: Annotated[Console, Depends(page("write", "messages"))],
    address: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    """Send the template as it stands in the form to `address`, rendered for the chosen customer."""
    assert console.user is not None
    form = await console.request.form()
    try:
        template, customer = _parsed(form), _customer(form)
        result = send_test(
            console.engine, template, customer, address, actor=console.user.actor, lang=_lang(form)
        )
    except ClmError as exc:
        return console.render("_template_sent.html", 422, error=exc, address=address)
    return console.render("_template_sent.html", result=result, address=address.strip())
