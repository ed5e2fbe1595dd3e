"""The keys of each kind of journey step as Pydantic models (unknown keys refused): the one
description the YAML/API/CLI loader checks steps against and the console's editor builds its
forms from (their JSON Schema). A new kind of step is a model here, registered in `STEP_MODELS`,
plus what the worker does with it (clm/journeys/steps.py); the editor offers it from then on.

The send step's model is `SendStep` in clm/journeys/definition.py (it also turns a channel
preference list into the channel and template per channel)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from clm.core.errors import InvalidInput

STEP_ID = r"^[A-Za-z0-9_-]{1,100}$"


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class WaitStep(_Args):
    """Wait a time (days, hours, minutes), until a local time of day, or for an event with a
    timeout (then: where to go when it happens; timeout: where to go when time runs out)."""

    days: float | None = Field(None, ge=0, le=3650, title="Days")
    hours: float | None = Field(None, ge=0, le=87600, title="Hours")
    minutes: float | None = Field(None, ge=0, le=5256000, title="Minutes")
    until_local: str | None = Field(
        None, pattern=r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$", title="Until local time (HH:MM)"
    )
    event: str | None = Field(None, min_length=1, max_length=64, title="Wait for event")
    timeout_days: float | None = Field(None, gt=0, le=3650, title="Timeout (days)")
    then: str | None = Field(None, pattern=STEP_ID, title="When it happens, go to")
    timeout: str | None = Field(None, pattern=STEP_ID, title="When time runs out, go to")


class BranchStep(_Args):
    """Go one way or the other by a condition in the segment language, checked at that moment."""

    if_: str = Field(..., alias="if", min_length=1, max_length=2000, title="If (condition)")
    then: str | None = Field(None, pattern=STEP_ID, title="Yes: go to")
    else_: str | None = Field(None, alias="else", pattern=STEP_ID, title="No: go to")


class SplitStep(_Args):
    """A/B/n test: each customer lands in one arm by a sticky random draw with the given shares;
    the holdout share receives nothing and is the control for incremental lift."""

    name: str | None = Field(None, pattern=r"^[a-z0-9_-]{1,100}$", title="Experiment name")
    arms: dict[str, float] = Field(..., min_length=1, max_length=10, title="Arms (name: share)")
    holdout: float = Field(0, ge=0, le=100, title="Holdout share")
    goto: dict[str, str] = Field(default_factory=dict, title="Arm: go to")

    @field_validator("arms")
    @classmethod
    def _shares(cls, arms: dict[str, float]) -> dict[str, float]:
        if any(v < 0 for v in arms.values()):
            raise ValueError("shares are numbers ≥ 0")
        return arms


class UpdateStep(_Args):
    """Set a custom attribute on the profile (e.g. to mark who got a coupon)."""

    attribute: str = Field(..., min_length=1, max_length=100, title="Attribute")
    value: str | float | bool | None = Field(None, title="Value")


class TaskStep(_Args):
    """Create a follow-up task for a person (a call, a visit)."""

    title: str = Field(..., min_length=1, max_length=500, title="Task")
    notes: str = Field("", max_length=5000, title="Notes")
    due_days: float = Field(2, ge=0, le=365, title="Due in (days)")
    assignee: str | None = Field(None, max_length=320, title="Assignee")


class ExitStep(_Args):
    """The customer leaves the journey here."""

    reason: str | None = Field(None, max_length=200, title="Reason")


STEP_MODELS: dict[str, type[BaseModel]] = {
    "wait": WaitStep,
    "branch": BranchStep,
    "split": SplitStep,
    "update": UpdateStep,
    "task": TaskStep,
    "exit": ExitStep,
}


def check_step(action: str, where: str, raw: Any) -> None:
    """Refuse a step's arguments that break its model (an unknown key, a wrong type), naming the
    step and key: `step 'w'.wait.hourz: unknown key; a wait step takes days, hours, …`."""
    model = STEP_MODELS.get(action)
    if model is None:
        return
    try:
        model.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(x) for x in first["loc"])
        at = f"{where}.{key}" if key else where
        if first["type"] == "extra_forbidden":
            keys = ", ".join(f.alias or name for name, f in model.model_fields.items())
            raise InvalidInput(f"unknown key; a {action} step takes {keys}", at) from None
        if first["type"] == "missing":
            raise InvalidInput("is required", at) from None
        raise InvalidInput(str(first["msg"]).removeprefix("Value error, "), at) from None


def editor_schemas(send_model: type[BaseModel] | None = None) -> dict[str, dict[str, Any]]:
    """kind → JSON Schema of its arguments (by their YAML names), for the console's step forms."""
    models = {**({"send": send_model} if send_model else {}), **STEP_MODELS}
    return {kind: model.model_json_schema(by_alias=True) for kind, model in models.items()}
