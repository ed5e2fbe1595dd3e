"""The segment field space described for people: every field `SegmentSpace` knows, with its
kind (number, text, true/false), the group it belongs to and, where the values are few, the
values; and the functions it offers with the arguments each takes. The console's condition
builder lists exactly these, so a field added to the space shows up there by itself."""

from __future__ import annotations

from dataclasses import dataclass, field

from clm.analytics.churn import BANDS
from clm.analytics.rfm import SEGMENTS as RFM_SEGMENTS
from clm.events.schemas import EVENT_TYPES
from clm.features import FEATURES
from clm.segments.space import CONSENT, FEATURES_KIND, PROFILE, SCORES, STAGE, SegmentSpace

ATTRIBUTE = "attr."  # a custom attribute: `attr.` and its name
GROUPS = ("profile", "attributes", "features", "lifecycle", "value", "churn", "consent")
_GROUP_OF_KIND = {PROFILE: "profile", FEATURES_KIND: "features", STAGE: "lifecycle", CONSENT: "consent"}


@dataclass(frozen=True)
class FieldInfo:
    """A field a condition can read: `name` as written in conditions (`attr.` for any custom
    attribute), its kind, its group, a unit and a description where the space has them, and
    the values it takes when they are few (filled in by `field_space`)."""

    name: str
    kind: str  # number, text or bool
    group: str
    unit: str = ""
    description: str = ""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class FunctionInfo:
    """A function a condition can call, and what it takes: event types, a window
    (`last Nd`), property filters (any key for events; sku/category for orders), a segment."""

    name: str
    kind: str  # what it gives: number (a count or a total) or bool
    types: bool = False
    window: bool = True
    filters: tuple[str, ...] = ()  # allowed keys; ("*",) for any property
    segment: bool = False
    event_types: tuple[str, ...] = field(default=())


FUNCTIONS: tuple[FunctionInfo, ...] = (
    FunctionInfo("events", "number", types=True, filters=("*",), event_types=EVENT_TYPES),
    FunctionInfo("orders", "number", filters=("sku", "category")),
    FunctionInfo("spent", "number", filters=("sku", "category")),
    FunctionInfo("purchased", "bool", filters=("sku", "category")),
    FunctionInfo("in_segment", "bool", window=False, segment=True),
)


def _group(name: str, depends: set[str]) -> str:
    if name.startswith(ATTRIBUTE):
        return "attributes"
    if name in ("churn_risk", "churn_band"):
        return "churn"
    if SCORES in depends:
        return "value"
    for kind, group in _GROUP_OF_KIND.items():
        if kind in depends:
            return group
    return "profile"


def field_space(stages: tuple[str, ...] = ()) -> list[FieldInfo]:
    """Every field of the segment space, in the space's own order; `stages` are the stage keys
    of the model in use (the values of `stage`)."""
    described = {f.name: f for f in FEATURES}
    choices = {
        "stage": tuple(stages),
        "rfm_segment": tuple(name for name, _ in RFM_SEGMENTS),
        "churn_band": (*(name for name, _ in BANDS), "lost"),
    }
    out = []
    for name in SegmentSpace().names():
        probe = SegmentSpace()
        typed = probe.field(f"{ATTRIBUTE}x" if name == "attr.<name>" else name)
        if typed is None or typed.kind is None:
            continue
        shown = ATTRIBUTE if name == "attr.<name>" else name
        feature = described.get(name)
        out.append(
            FieldInfo(
                shown,
                typed.kind,
                _group(shown, probe.depends),
                feature.unit if feature else "",
                feature.description if feature else "",
                choices.get(name, ()),
            )
        )
    return out


__all__ = ["ATTRIBUTE", "FUNCTIONS", "GROUPS", "FieldInfo", "FunctionInfo", "field_space"]
