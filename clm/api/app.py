"""The FastAPI application: one router per domain, API-key auth, JSON errors, OpenAPI at /docs."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from clm import __version__
from clm.analytics.api import router as analytics_router
from clm.api import customer_view, errors
from clm.commerce.api import router as commerce_router
from clm.commerce.order_days import ensure_order_days_zone
from clm.core.followups import CoalescingRefresher
from clm.customers.api import router as customers_router
from clm.events.api import router as events_router
from clm.feedback.api import router as feedback_router
from clm.feedback.pages import router as survey_pages
from clm.journeys.api import router as journeys_router
from clm.journeys.pages import router as message_links
from clm.journeys.receipts import router as sms_receipts
from clm.journeys.wechat_push import router as wechat_push
from clm.lifecycle.api import router as lifecycle_router
from clm.loyalty.api import router as loyalty_router
from clm.segments.api import router as segments_router
from clm.store.engine import make_engine
from clm.views.groups import customer_groups
from clm.views.scope import customer_scope
from clm.web import install_console
from clm.worker.refresh import refresh_customers

log = logging.getLogger("clm.api")

DESCRIPTION = """
Customer Lifecycle Management API.

Every call under `/api/v1` needs an API key: `Authorization: Bearer <key>`
(create one with `clm apikey create --role ROLE --name NAME`). Roles: **admin**, **marketer**
(read and write), **analyst**, **viewer** (read only).

Errors are JSON: `{"error": {"status": 422, "code": "invalid", "message": "...",
"fields": [{"field": "events[3].timestamp", "message": "..."}]}}`; 401 means a missing or bad
key, 403 a role without the right.
"""


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str
    fields: list[dict[str, str]] | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, malformed, revoked or unknown API key."},
    403: {"model": ErrorOut, "description": "The key's role may not do this."},
    404: {"model": ErrorOut, "description": "No such customer, order or product."},
    409: {"model": ErrorOut, "description": "Conflicts with what is stored (a name taken, say)."},
    422: {"model": ErrorOut, "description": "Invalid input; `fields` names each bad field."},
    503: {
        "model": ErrorOut,
        "description": "The database stayed busy with another writer (SQLite: a bulk import, say); "
        "nothing was stored: send it again after `Retry-After` seconds.",
    },
}


def _order_days_in_store_zone(engine: Engine) -> None:
    """Rebuild the order summary at start when the store's zone changed, unless another process
    holds SQLite's write lock (a bulk import): the server starts anyway, and the next start or
    `clm` command rebuilds it."""
    try:
        ensure_order_days_zone(engine)
    except OperationalError as exc:
        log.warning("order_days not rebuilt in the store's zone at start (%s); the next start will", exc.orig)


def create_app(engine: Engine | None = None) -> FastAPI:
    # FastAPIOffline serves the Swagger UI files itself: /docs works without internet access.
    app = FastAPIOffline(
        title="CLM",
        version=__version__,
        description=DESCRIPTION,
        dependencies=[Depends(errors.reject_nul_characters)],
    )
    app.state.engine = engine or make_engine()
    # a changed CLM_DEFAULT_TIMEZONE: the order summary's days are cut in the new zone at start
    app.router.add_event_handler("startup", lambda: _order_days_in_store_zone(app.state.engine))
    # after ingestion commits, the customers it touched get their stages and segments re-evaluated
    app.state.refresh_customers = CoalescingRefresher(refresh_customers)  # shared by concurrent requests
    # survey results by stage or segment: the feedback domain cannot read those tables itself
    app.state.customer_groups = customer_groups
    # reports filtered to a channel or a segment: the same, for the lifecycle and analytics routes
    app.state.customer_scope = customer_scope
    errors.install(app)
    for router in (
        customers_router,  # before the view: /customers/duplicates is not an id
        customer_view.router,
        events_router,
        commerce_router,
        lifecycle_router,
        analytics_router,
        segments_router,
        loyalty_router,
        feedback_router,
        journeys_router,
    ):
        app.include_router(router, responses=ERRORS)
    app.include_router(survey_pages)  # the answer page behind a survey link (HTML, no key)
    app.include_router(message_links)  # unsubscribe, open pixel, tracked links (no key)
    app.include_router(sms_receipts, responses=ERRORS)  # SMS providers' receipts (shared secret)
    app.include_router(wechat_push, responses=ERRORS)  # WeChat's pushes (signed with CLM_WECHAT_TOKEN)
    install_console(app)  # the web console at / (signed-in users, HTML)

    @app.get("/healthz", tags=["health"])
    def health() -> dict[str, Any]:
        """Liveness check (no key needed)."""
        return {"status": "ok", "version": __version__, "database": app.state.engine.dialect.name}

    return app
