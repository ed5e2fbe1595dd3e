"""The one error a bad condition raises, pointing at the column or JSON path at fault."""

from __future__ import annotations

from clm.core.errors import InvalidInput


class ConditionError(InvalidInput):
    """A condition that cannot be parsed or compiled. `pos` is a 0-based column in the text form."""

    def __init__(
        self, reason: str, *, text: str | None = None, pos: int = -1, field: str | None = None
    ) -> None:
        self.text = text
        self.pos = pos
        self.detail = reason
        message = reason
        if text is not None and pos >= 0:
            message = f"{reason} at column {pos + 1}: {text[:pos]}⟶{text[pos:]}"
        super().__init__(message, field or "condition")

    def within(self, field: str) -> ConditionError:
        """The same error, attributed to a named field (e.g. `stages[2].rule`)."""
        return ConditionError(self.detail, text=self.text, pos=self.pos, field=field)
