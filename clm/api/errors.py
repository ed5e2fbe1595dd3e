"""Every error leaves the API as JSON: {"error": {"status", "code", "message", "fields"}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from clm.core.errors import ClmError, InvalidInput
from clm.core.payloads import SHAPE_TAGS
from clm.store.engine import is_busy

log = logging.getLogger("clm.api")


def error_body(
    status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def validation_fields(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Readable field paths (events[3].timestamp) for Pydantic's errors.

    The where-it-came-from prefix (body, query) and the one-or-batch shape tag are dropped.
    """
    plain: list[dict[str, Any]] = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        if loc and loc[0] in SHAPE_TAGS:
            loc = loc[1:]
        plain.append({**err, "loc": loc})
    return [
        {
            "field": _path(tuple(e["loc"])),
            "message": str(e.get("msg", "invalid")).removeprefix("Value error, "),
        }
        for e in plain
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(ClmError)
    async def clm_error(_: Request, exc: ClmError) -> JSONResponse:
        fields = None
        if isinstance(exc, InvalidInput) and exc.field:
            fields = [{"field": exc.field, "message": exc.reason}]
        fields = getattr(exc, "fields", None) or fields  # an error naming several things at fault
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(
            error_body(exc.status_code, exc.code, exc.message, fields),
            exc.status_code,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = validation_fields(list(exc.errors()))
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:10])
        return JSONResponse(error_body(422, "invalid", message or "invalid request", fields), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(exc.status_code, code, str(exc.detail)), exc.status_code)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if getattr(exc.orig, "sqlstate", None) == "22003":
            # PostgreSQL's numeric overflow: arithmetic the request asked for (say a condition's
            # `orders * 1e15 * 1e15`) left the 64-bit range; nothing was stored
            message = "a number went out of range while computing the answer: use smaller numbers"
            return JSONResponse(error_body(422, "out_of_range", message), 422)
        if not is_busy(exc):
            return await crash(request, exc)
        message = (
            "the database is busy with another writer (a bulk import, say): nothing was stored; try again"
        )
        return JSONResponse(error_body(503, "busy", message), 503, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(error_body(500, "internal", "internal error; the server log has details"), 500)


async def reject_nul_characters(request: Request) -> None:
    """Text with NUL characters cannot be stored (PostgreSQL refuses it): say so up front."""
    if "\x00" in str(request.query_params) or "%00" in request.url.query:
        raise InvalidInput("text must not contain NUL (\\u0000) characters", "query")
    if request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/")
    ):
        # a form (the survey page): FastAPI has already read the stream into the parsed form
        form = await request.form()
        if any(isinstance(v, str) and "\x00" in v for v in form.values()):
            raise InvalidInput("text must not contain NUL characters", "form")
        return
    body = await request.body()
    if b"\\u0000" in body or b"\x00" in body:
        raise InvalidInput("text must not contain NUL (\\u0000) characters", "body")
