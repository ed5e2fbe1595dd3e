"""FastAPI dependencies that turn the Authorization header into a checked Principal."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from clm.auth.service import Principal, authenticate, require_permission

# auto_error=False: we raise our own 401 with a JSON message instead of FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="An API key from `clm apikey create`.")


def requires(permission: str) -> Callable[..., Principal]:
    """Dependency factory: the caller must hold `permission` (read, write, admin)."""

    def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
    ) -> Principal:
        header = (
            f"{credentials.scheme} {credentials.credentials}"
            if credentials
            else request.headers.get("authorization")
        )
        principal = authenticate(request.app.state.engine, header)
        require_permission(principal, permission)
        return principal

    dependency.__name__ = f"requires_{permission}"
    return dependency
