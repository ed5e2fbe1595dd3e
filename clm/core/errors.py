"""The error types every layer raises; the API and CLI turn them into JSON / one stderr line."""

from __future__ import annotations


class ClmError(Exception):
    """Base for errors a user can act on; `message` is shown to them as it is."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ClmError):
    status_code = 404
    code = "not_found"


class InvalidInput(ClmError):
    """Input that breaks a rule; `field` names the offending field when there is one."""

    status_code = 422
    code = "invalid"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


class Conflict(ClmError):
    status_code = 409
    code = "conflict"


class Unauthorized(ClmError):
    status_code = 401
    code = "unauthorized"


class Forbidden(ClmError):
    status_code = 403
    code = "forbidden"


class UnusableInput(ClmError):
    """A whole input (file, format) cannot be read at all, as opposed to a bad row in it."""

    code = "unusable_input"


class StoreInconsistent(ClmError):
    """The store breaks one of its own rules (a row pointing at nothing, say)."""

    status_code = 500
    code = "store_inconsistent"
