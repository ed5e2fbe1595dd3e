"""Validated input and plain output values of the commerce domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from clm.core.errors import InvalidInput
from clm.core.payloads import MAX_AMOUNT, IsoDate, IsoDateTime
from clm.core.timeutil import check_activity_time, from_store_time
from clm.customers.identities import IDENTITY_KINDS

ORDER_STATUSES = ("completed", "refunded", "cancelled")
DEFAULT_CURRENCY = "CNY"


def _currency(v: str) -> str:
    if len(v) != 3 or not v.isalpha() or not v.isascii():
        raise ValueError(f"{v!r} is not a three-letter currency code")
    return v.upper()


Currency = Annotated[str, AfterValidator(_currency)]


class ProductIn(BaseModel):
    """A catalogue entry, created or updated by SKU."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sku: str = Field(..., min_length=1, max_length=64)
    name: str = Field(..., min_length=1, max_length=300)
    category: str | None = Field(None, max_length=200)
    price: float = Field(..., ge=0, le=MAX_AMOUNT, allow_inf_nan=False)
    cost: float | None = Field(
        None, ge=0, le=MAX_AMOUNT, allow_inf_nan=False, description="Unit cost, for margins."
    )
    currency: Currency = DEFAULT_CURRENCY
    active: bool = True
    in_stock: bool = True
    attributes: dict[str, Any] = Field(default_factory=dict)


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sku: str = Field(..., min_length=1, max_length=64)
    quantity: int = Field(1, ge=1, le=1_000_000)
    unit_price: float = Field(..., ge=0, le=MAX_AMOUNT, allow_inf_nan=False)


class OrderIn(BaseModel):
    """An order, created or updated (e.g. refunded) by its order_id."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    order_id: str = Field(..., min_length=1, max_length=128)
    external_id: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40)
    anonymous_id: str | None = Field(None, max_length=200)
    wechat_openid: str | None = Field(None, max_length=200, description="appid:openid")
    wechat_unionid: str | None = Field(None, max_length=64)
    wecom_external_userid: str | None = Field(None, max_length=64, description="WeCom external_userid")
    ordered_at: IsoDateTime
    status: Literal["completed", "refunded", "cancelled"] = "completed"
    refunded_at: IsoDateTime | None = None
    currency: Currency = DEFAULT_CURRENCY
    total: float | None = Field(
        None,
        ge=0,
        le=MAX_AMOUNT,
        allow_inf_nan=False,
        description="Amount paid; defaults to the sum of the items.",
    )
    channel: str | None = Field(None, max_length=32)
    campaign: str | None = Field(None, max_length=200)
    items: list[OrderItemIn] = Field(default_factory=list)

    @field_validator("ordered_at", "refunded_at")
    @classmethod
    def _utc(cls, v: datetime | None, info: ValidationInfo) -> datetime | None:
        if v is None:
            return None
        try:
            return check_activity_time(from_store_time(v), info.field_name or "ordered_at")
        except InvalidInput as exc:
            raise ValueError(exc.reason)

    @model_validator(mode="after")
    def _check(self) -> OrderIn:
        if not self.identity_fields():
            raise ValueError(
                "an order needs a customer identity: external_id, email, phone, anonymous_id,"
                " wechat_openid, wechat_unionid or wecom_external_userid"
            )
        if self.total is None and not self.items:
            raise ValueError("an order needs a total or at least one item")
        return self

    def identity_fields(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in IDENTITY_KINDS if getattr(self, k)}


class SpendIn(BaseModel):
    """Marketing spend of a channel (and optionally a campaign) over a period, for CAC and ROI."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: str = Field(..., min_length=1, max_length=64)
    campaign: str = Field("", max_length=200)
    period_start: IsoDate
    period_end: IsoDate
    amount: float = Field(..., ge=0, le=MAX_AMOUNT, allow_inf_nan=False)
    currency: Currency = DEFAULT_CURRENCY

    @model_validator(mode="after")
    def _period(self) -> SpendIn:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        if not date(1990, 1, 1) <= self.period_start <= date(2100, 12, 31) or self.period_end > date(
            2100, 12, 31
        ):
            raise ValueError("the period must lie between 1990 and 2100")
        return self


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str | None
    price: float
    cost: float | None
    currency: str
    active: bool
    in_stock: bool
    attributes: dict[str, Any]


@dataclass(frozen=True)
class OrderItem:
    sku: str
    quantity: int
    unit_price: float


@dataclass(frozen=True)
class Order:
    order_id: str
    customer_id: int
    status: str
    ordered_at: datetime
    refunded_at: datetime | None
    currency: str
    total: float
    channel: str | None
    campaign: str | None
    items: list[OrderItem] = field(default_factory=list)


@dataclass(frozen=True)
class Spend:
    channel: str
    campaign: str
    period_start: date
    period_end: date
    amount: float
    currency: str


@dataclass(frozen=True)
class OrderSummary:
    orders: int
    completed: int
    refunded: int
    revenue: float
    first_order_at: datetime | None
    last_order_at: datetime | None
