"""The web console: server-rendered pages (Jinja2, htmx, Alpine.js, ECharts; all vendored, no CDN)
in Chinese and English, served by `clm serve` beside the API from the same process."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from clm.web.access import ConsoleDenied, ConsoleRedirect
from clm.web.campaigns import router as campaigns_router
from clm.web.customers import router as customers_router
from clm.web.frame import router as frame_router
from clm.web.imports import router as imports_router
from clm.web.imports import runner as import_runner
from clm.web.journeys import router as journeys_router
from clm.web.message_templates import router as templates_router
from clm.web.outbox_page import router as outbox_router
from clm.web.overview import router as overview_router
from clm.web.segment_builder import router as segment_builder_router
from clm.web.segments import router as segments_router

STATIC = Path(__file__).parent / "static"
# every router of console pages; tests/web/test_permissions.py checks each of their routes
CONSOLE_ROUTERS = (
    frame_router,
    overview_router,
    customers_router,
    segment_builder_router,  # before segments_router: /segments/new is not a segment id
    segments_router,
    journeys_router,
    templates_router,
    outbox_router,
    campaigns_router,
    imports_router,
)


def install_console(app: FastAPI) -> None:
    """Mount the console on the API's app: its pages, /static, and the answers to a refused
    console request (a sign-in redirect or a 403 page, never JSON)."""
    for router in CONSOLE_ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # imports a stopped server left queued or half done are taken up again when it starts
    app.router.add_event_handler("startup", lambda: import_runner(app).resume())

    @app.exception_handler(ConsoleRedirect)
    async def to_sign_in(request: Request, exc: ConsoleRedirect) -> Response:
        if request.headers.get("hx-request"):  # htmx follows this header instead of a redirect
            return Response(status_code=401, headers={"HX-Redirect": exc.location})
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(ConsoleDenied)
    async def denied(_: Request, exc: ConsoleDenied) -> HTMLResponse:
        return exc.console.render("denied.html", exc.status, reason=exc.reason)


__all__ = ["CONSOLE_ROUTERS", "install_console"]
