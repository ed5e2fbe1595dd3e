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
            # up to 60 characters either side of the column: a 10,000-character condition
            # does not make a 10,000-character message
            before = ("…" if pos > 60 else "") + text[max(0, pos - 60) : pos]
            after = text[pos : pos + 60] + ("…" if len(text) > pos + 60 else "")
            message = f"{reason} at column {pos + 1}: {before}⟶{after}"
        super().__init__(message, field or "condition")

    def within(self, field: str) -> ConditionError:
        """The same error, attributed to a named field (e.g. `stages[2].rule`)."""
        return ConditionError(self.detail, text=self.text, pos=self.pos, field=field)
