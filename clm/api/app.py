"""The FastAPI application: one router per domain, API-key auth, JSON errors, OpenAPI at /docs."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine

from clm import __version__
from clm.api import customer_view, errors
from clm.commerce.api import router as commerce_router
from clm.customers.api import router as customers_router
from clm.events.api import router as events_router
from clm.store.engine import make_engine

DESCRIPTION = """
Customer Lifecycle Management API.

Every call under `/api/v1` needs an API key: `Authorization: Bearer <key>`
(create one with `clm apikey create --role ROLE --name NAME`). Roles: **admin**, **marketer**
(read and write), **analyst**, **viewer** (read only).

Errors are JSON: `{"error": {"status": 422, "code": "invalid", "message": "...",
"fields": [{"field": "events[3].timestamp", "message": "..."}]}}`; 401 means a missing or bad
key, 403 a role without the right.
"""


def create_app(engine: Engine | None = None) -> FastAPI:
    app = FastAPI(title="CLM", version=__version__, description=DESCRIPTION)
    app.state.engine = engine or make_engine()
    errors.install(app)
    app.include_router(customers_router)  # before the view: /customers/duplicates is not an id
    app.include_router(customer_view.router)
    app.include_router(events_router)
    app.include_router(commerce_router)

    @app.get("/healthz", tags=["health"])
    def health() -> dict[str, Any]:
        """Liveness check (no key needed)."""
        return {"status": "ok", "version": __version__, "database": app.state.engine.dialect.name}

    return app
