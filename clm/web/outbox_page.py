"""The outbox page (`/outbox`): messages queued, held (with the reason and when they go out),
sent, failed (with the reason and a retry button) and not sent, per channel; a marketer releases
or cancels held messages and retries failed ones, through the same journeys services as the API
and `clm outbox retry`."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response

from clm.core.errors import ClmError, InvalidInput
from clm.journeys.outbox_admin import STATES, cancel_messages, outbox_page, release_messages
from clm.journeys.service import retry_message
from clm.web.access import Console, page
from clm.web.i18n import N_

router = APIRouter(include_in_schema=False, tags=["console"])

PER_PAGE = 50
STATE_NAMES = {
    "queued": N_("Queued"),
    "held": N_("Held"),
    "sent": N_("Sent"),
    "failed": N_("Failed"),
    "not_sent": N_("Not sent"),
}
DONE = {"released", "cancelled", "retried", "none"}
# the reasons the outbox records (in English, as the CLI shows them), said in the page's language;
# a reason of another form is shown as recorded
REASONS = (
    (re.compile(r"quiet hours in the customer's time zone$"), N_("Quiet hours in the customer’s time zone")),
    (re.compile(r"released by (?P<who>.+)$"), N_("Released by %(who)s")),
    (re.compile(r"cancelled by (?P<who>.+)$"), N_("Cancelled by %(who)s")),
    (re.compile(r"no (?P<channel>\w+) marketing consent$"), N_("No marketing consent for %(channel)s")),
    (re.compile(r"no (?P<channel>\w+) address on the profile$"), N_("No %(channel)s address on the profile")),
    (re.compile(r"frequency cap: (?P<detail>.+)$"), N_("Frequency cap reached: %(detail)s")),
    (re.compile(r"attempt (?P<n>\d+) of (?P<of>\d+) failed: (?P<detail>.+)$", re.S),
     N_("Attempt %(n)s of %(of)s failed: %(detail)s")),
    (re.compile(r"gave up after (?P<n>\d+) attempts: (?P<detail>.+)$", re.S),
     N_("Gave up after %(n)s attempts: %(detail)s")),
    (re.compile(r"(?P<detail>.+) is suppressed \(bounced\)$"), N_("%(detail)s is suppressed (it bounced)")),
    (re.compile(r"the profile was merged into another$"), N_("The profile was merged into another")),
)  # fmt: skip


def reason_parts(reason: str | None) -> tuple[str, dict[str, str]]:
    """A recorded reason as a message and its values, for the page to say in its language (a
    reason of an unknown form is shown as recorded)."""
    if not reason:
        return "–", {}
    for pattern, message in REASONS:
        found = pattern.match(reason)
        if found:
            return message, found.groupdict()
    return "%(reason)s", {"reason": reason}


@router.get("/outbox", response_class=HTMLResponse)
def outbox_list(
    console: Annotated[Console, Depends(page("read", "messages"))],
    state: Annotated[str, Query(max_length=20)] = "held",
    channel: Annotated[str, Query(max_length=16)] = "",
    p: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    done: Annotated[str, Query(max_length=20)] = "",
    n: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    error: Annotated[str, Query(max_length=300)] = "",
) -> Response:
    console.crumbs = [(N_("Messages"), "/templates"), (N_("Outbox"), None)]
    if state not in STATES:
        state = "held"
    shown = outbox_page(console.engine, state, channel or None, p, PER_PAGE)
    return console.render(
        "outbox.html",
        shown=shown,
        states=STATES,
        state_names=STATE_NAMES,
        done=done if done in DONE else "",
        n=n,
        error=error,
        can_write=console.user is not None and console.user.can("write"),
        reason_parts=reason_parts,
        tab="outbox",
    )


def _back(console: Console, form: dict[str, str], **result: object) -> Response:
    """Back to the list the person was looking at, saying what was done."""
    query = {k: form[k] for k in ("state", "channel", "p") if form.get(k)}
    query.update({k: str(v) for k, v in result.items()})
    return console.redirect("/outbox?" + urlencode(query))


async def _ids(console: Console) -> tuple[dict[str, str], list[int]]:
    form = await console.request.form()
    ids = []
    for raw in form.getlist("id"):
        if not str(raw).isdigit():
            raise InvalidInput(f"{raw!r} is not a message id", "id")
        ids.append(int(str(raw)))
    return {k: str(v) for k, v in form.items() if k in ("state", "channel", "p")}, ids


@router.post("/outbox/release")
async def outbox_release(console: Annotated[Console, Depends(page("write", "messages"))]) -> Response:
    assert console.user is not None
    try:
        form, ids = await _ids(console)
        released = release_messages(console.engine, ids, actor=console.user.actor)
    except ClmError as exc:
        return _back(console, {}, error=exc.message)
    return _back(console, form, done="released" if released else "none", n=len(released))


@router.post("/outbox/cancel")
async def outbox_cancel(console: Annotated[Console, Depends(page("write", "messages"))]) -> Response:
    assert console.user is not None
    try:
        form, ids = await _ids(console)
        cancelled = cancel_messages(console.engine, ids, actor=console.user.actor)
    except ClmError as exc:
        return _back(console, {}, error=exc.message)
    return _back(console, form, done="cancelled" if cancelled else "none", n=len(cancelled))


@router.post("/outbox/retry")
async def outbox_retry(console: Annotated[Console, Depends(page("write", "messages"))]) -> Response:
    assert console.user is not None
    try:
        form, ids = await _ids(console)
        if not ids:
            raise InvalidInput("choose at least one message", "id")
        for message_id in ids:
            retry_message(console.engine, message_id, actor=console.user.actor)
    except ClmError as exc:
        return _back(console, {"state": "failed"}, error=exc.message)
    return _back(console, form, done="retried", n=len(ids))
