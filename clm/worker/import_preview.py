"""Before a file is imported from the console: the fields each kind of file can fill, the column
names people give them (English and Chinese, as Excel exports and Chinese shop systems write
them) and, with a chosen mapping, the first rows read exactly as the import will read them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from clm.commerce.importer import order_from_row, order_statuses, product_from_row
from clm.core.errors import InvalidInput
from clm.core.files import BadRow, DataFile
from clm.core.imports import Checked, describe_error
from clm.core.settings import settings
from clm.core.timeutil import utcnow
from clm.customers.identities import IDENTITY_KINDS
from clm.customers.importer import PROFILE_FIELDS, customer_from_row
from clm.customers.schemas import CONSENT_CHANNELS
from clm.events.bulk import local_time
from clm.events.schemas import validate_event

PREVIEW_ROWS = 8

# what each kind of file can fill; a column mapped to none of them is kept as it is (a custom
# attribute of the customer or product, a property of the event)
FIELDS: dict[str, tuple[str, ...]] = {
    "customers": (
        *IDENTITY_KINDS,
        "full_name",  # split into family and given name (clm.customers.importer)
        *PROFILE_FIELDS,
        *(f"consent_{c}" for c in CONSENT_CHANNELS),
        "consent_source",
        "attributes",
    ),
    "events": ("event_id", "type", "timestamp", *IDENTITY_KINDS, "channel", "properties"),
    "orders": (
        "order_id",
        *IDENTITY_KINDS,
        "ordered_at",
        "status",
        "refunded_at",
        "currency",
        "total",
        "channel",
        "campaign",
        "sku",
        "quantity",
        "unit_price",
    ),
    "products": ("sku", "name", "category", "price", "cost", "currency", "active", "in_stock"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "customers": (),
    "events": ("type", "timestamp"),
    "orders": ("order_id", "ordered_at"),
    "products": ("sku",),
}

_IDENTITY_NAMES = {
    "external_id": "会员编号 会员号 会员id 会员卡号 客户编号 客户id 客户号 用户id 用户编号 外部编号 "
    "userid customerid customerno customernumber memberid memberno",
    "email": "邮箱 电子邮箱 邮箱地址 电子邮件 邮件 e-mail mail emailaddress",
    "phone": "手机 手机号 手机号码 电话 联系电话 移动电话 "
    "mobile mobilephone cellphone tel telephone phonenumber",
    "wechat_openid": "openid 微信openid",
    "wechat_unionid": "unionid 微信unionid",
}
_NAMES: dict[str, dict[str, str]] = {
    "customers": {
        "full_name": "姓名 客户姓名 会员姓名 fullname name",
        "last_name": "姓 姓氏 lastname surname familyname",
        "first_name": "名 名字 firstname givenname",
        "birthday": "生日 出生日期 birthdate dateofbirth dob",
        "gender": "性别 sex",
        "city": "城市 所在城市",
        "region": "省份 省 地区 province state",
        "country": "国家 国家地区",
        "occupation": "职业 job",
        "acquisition_channel": "来源渠道 注册渠道 来源 source channel",
        "acquisition_campaign": "来源活动 campaign",
        "first_seen_at": "注册时间 注册日期 首次访问时间 开卡时间 signupdate registeredat createdat",
        "consent_sms": "接收短信 短信同意 短信订阅 允许短信",
        "consent_email": "接收邮件 邮件订阅 允许邮件",
        "consent_wechat": "接收微信 微信订阅",
        "attributes": "自定义属性",
    },
    "events": {
        "type": "事件 事件类型 类型 行为 eventtype event",
        "timestamp": "时间 发生时间 事件时间 行为时间 time occurredat eventtime",
        "event_id": "事件编号 事件id eventid",
        "channel": "渠道",
        "properties": "属性",
    },
    "orders": {
        "order_id": "订单号 订单编号 订单id 单号 orderid orderno ordernumber",
        "ordered_at": "下单时间 订单时间 下单日期 付款时间 支付时间 orderdate ordertime",
        "status": "订单状态 状态 交易状态 orderstatus",
        "refunded_at": "退款时间 refunddate",
        "currency": "币种 货币",
        "total": "订单金额 实付金额 总金额 实付款 应付金额 金额 amount ordertotal",
        "channel": "渠道 下单渠道 来源渠道 店铺",
        "campaign": "活动 营销活动",
        "sku": "商品编码 商品编号 商品id 货号 skuid productid",
        "quantity": "数量 购买数量 件数 qty",
        "unit_price": "单价 商品单价 价格 price unitprice",
    },
    "products": {
        "sku": "商品编码 商品编号 商品id 货号 skuid productid",
        "name": "商品名称 名称 品名 商品名 productname title",
        "category": "类目 分类 品类 商品分类",
        "price": "价格 售价 零售价 单价",
        "cost": "成本 成本价 进价",
        "currency": "币种 货币",
        "active": "上架 是否上架 在售 enabled",
        "in_stock": "有货 是否有货 库存状态 instock",
    },
}
_SQUASH = re.compile(r"[\s_\-./（）()：:]+")


def _key(name: str) -> str:
    return _SQUASH.sub("", name).lower()


def _aliases(kind: str) -> dict[str, str]:
    found: dict[str, str] = {}
    names = {**(_IDENTITY_NAMES if kind != "products" else {}), **_NAMES[kind]}
    for target, words in names.items():
        for word in words.split():
            found.setdefault(_key(word), target)
    for target in FIELDS[kind]:
        found[_key(target)] = target
    return found


def suggest_mapping(kind: str, columns: list[str]) -> dict[str, str]:
    """Each column named like a field (`手机号` → phone, `Order No` → order_id), each field once;
    columns already named as fields are left as they are."""
    aliases = _aliases(kind)
    taken = {c for c in columns if c in FIELDS[kind]}
    mapping: dict[str, str] = {}
    for column in columns:
        if column in FIELDS[kind]:
            continue
        target = aliases.get(_key(column))
        if target and target not in taken:
            mapping[column] = target
            taken.add(target)
    return mapping


def workbook_sheets(path: Path) -> list[str]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    try:
        return list(book.sheetnames)
    finally:
        book.close()


@dataclass(frozen=True)
class PreviewRow:
    line: int
    sheet: str | None
    original: dict[str, Any]  # the cells as the file has them, under its own column names
    parsed: list[tuple[str, Any]]  # (field, value as the import reads it), empty when rejected
    reason: str | None = None  # why the import would reject the row
    warnings: list[str] = field(default_factory=list)  # fields it would leave out, and why


@dataclass(frozen=True)
class Preview:
    columns: list[str]
    rows: list[PreviewRow]
    problem: str | None = None  # the file cannot be read with these settings


def _flat(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _flat(f"{prefix}.{k}" if prefix else str(k), v)]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _flat(f"{prefix}[{i}]", v)]
    return [(prefix, value)]


def _fields(model: BaseModel) -> list[tuple[str, Any]]:
    return [
        (name, value)
        for name, value in _flat("", model.model_dump(exclude_none=True, exclude_defaults=False))
        if value not in ({}, [], "")
    ]


def parse_row(
    kind: str, row: dict[str, Any], tz: ZoneInfo, statuses: dict[str, str]
) -> tuple[list[tuple[str, Any]], list[str]]:
    """One row read as the import of `kind` reads it: its fields (flattened: `items[0].sku`,
    `consents.sms`) and the warnings; raises as the import would reject it."""
    warnings: list[str] = []
    parsed: Any
    if kind == "customers":
        parsed = customer_from_row(row, tz)
    elif kind == "orders":
        parsed = order_from_row(row, tz, statuses)
    elif kind == "products":
        parsed = product_from_row(row)
    else:
        event = validate_event(local_time(row, tz), utcnow())
        fields: list[tuple[str, Any]] = [
            ("event_id", event.event_id),
            ("type", event.type),
            ("channel", event.channel),
            ("timestamp", event.occurred_at),
            *event.identities.items(),
            *_flat("properties", event.properties),
        ]
        return fields, warnings
    if isinstance(parsed, Checked):
        warnings = parsed.warnings
        parsed = parsed.item
    return _fields(parsed), warnings


def preview_file(
    kind: str,
    path: Path,
    fmt: str,
    mapping: dict[str, str],
    encoding: str | None = None,
    sheet: str | None = None,
    limit: int = PREVIEW_ROWS,
) -> Preview:
    """The file's columns and its first `limit` rows, each as the import would store it or with
    the reason it would be rejected. Reads only as far as those rows."""
    tz = ZoneInfo(settings().default_timezone)
    try:
        statuses = order_statuses()
        lines = fmt == "jsonl"  # JSON objects: renamed here, so each keeps its own keys to show
        data = DataFile(path, fmt, {} if lines else mapping, encoding=encoding, sheet=sheet)
        rows: list[PreviewRow] = []
        keys: dict[str, None] = {}
        for line, row in data.rows():
            original = data.original()
            if lines and not isinstance(row, BadRow):
                original = row
                keys.update(dict.fromkeys(row))
                row = {mapping.get(k, k): v for k, v in row.items() if mapping.get(k) != "-"}  # "-": left out
            if isinstance(row, BadRow):
                rows.append(PreviewRow(line, data.sheet, original, [], row.reason))
            else:
                try:
                    parsed, warnings = parse_row(kind, row, tz, statuses)
                    rows.append(PreviewRow(line, data.sheet, original, parsed, None, warnings))
                except (InvalidInput, ValidationError, ValueError, TypeError) as exc:
                    rows.append(PreviewRow(line, data.sheet, original, [], describe_error(exc)))
            if len(rows) >= limit:
                break
        columns = list(keys) if lines else data.columns
    except InvalidInput as exc:
        return Preview([], [], exc.message)
    except Exception as exc:  # UnusableInput and whatever a damaged file raises
        return Preview([], [], getattr(exc, "message", None) or str(exc))
    return Preview(columns, rows)


def is_plain(value: Any) -> bool:
    """Whether a parsed value is shown as it is (text, numbers), not as a date, time or yes/no."""
    return not isinstance(value, bool | date | datetime | Decimal)


__all__ = [
    "FIELDS",
    "REQUIRED",
    "Preview",
    "PreviewRow",
    "preview_file",
    "suggest_mapping",
    "workbook_sheets",
]
