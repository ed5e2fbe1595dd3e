"""Message templates: Jinja2 in a sandbox (a template cannot reach Python internals or the
file system), one text per language (en, zh), for email (subject, text, optional HTML), SMS
(text), webhooks, WeChat Official Account template messages (the text maps our data to the WeChat
template: `template: ID`, then one `field: value` line per data field, optional `url:`) and WeCom
(the text is the message). The presets in `presets/` ship with CLM; `clm templates add FILE` stores
more in the database (a stored template of the same name wins).

One model (`MessageTemplate`) checks a template wherever it comes from (a YAML file, the API,
the database), so whatever is saved loads again. Rendering is guarded: any error in a template
(not only Jinja's own: a division by zero, a type error) is an `InvalidInput` naming it; loops
may run at most `LOOP_LIMIT` times per message, and the output is capped at
`CLM_TEMPLATE_MAX_BYTES`, checked while it is produced (a `'a' * 10**9` is refused before the
string is made)."""

from __future__ import annotations

import contextvars
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import Engine, insert, select, update

from clm.channels.tables import message_templates
from clm.core.definitions import read_definition
from clm.core.errors import InvalidInput, NotFound
from clm.core.person_names import display_name, salutation
from clm.core.settings import settings
from clm.core.timeutil import utcnow

LANGUAGES = ("en", "zh")
Language = Literal["en", "zh"]
LOOP_LIMIT = 100_000  # loop iterations in one message, all loops together
_POWER_BITS = 4_096  # `a ** b` may give a number of at most this many bits


class RenderLimit(Exception):
    """A template went past one of the render guards."""


_budget: contextvars.ContextVar[list[int]] = contextvars.ContextVar("clm_template_budget")


def _looped(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every `{% for %}` runs through this: counts the message's loop iterations."""
    budget = _budget.get(None)
    for item in iterable:
        if budget is not None:
            budget[0] -= 1
            if budget[0] < 0:
                raise RenderLimit(f"loops ran more than {LOOP_LIMIT:,} times in one message")
        yield item


class _GuardedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox plus the render guards: loops counted, `*` and `**` checked before they run."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.globals["_clm_looped"] = _looped
        self.globals.pop("lipsum", None)  # lipsum(n=10**9) would write without end

    def _generate(
        self, source: nodes.Template, name: str | None, filename: str | None, defer_init: bool = False
    ) -> str:
        # Jinja's documented hook before code generation: wrap every loop's iterable
        for loop in source.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.Name("_clm_looped", "load"), [loop.iter], [], None, None)
            loop.iter.set_environment(self)
        return super()._generate(source, name, filename, defer_init)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        limit = settings().template_max_bytes
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int) and len(seq) * n > limit:
                    raise RenderLimit(
                        f"{len(seq):,} × {n:,} items is larger than CLM_TEMPLATE_MAX_BYTES ({limit:,})"
                    )
        elif (
            isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and right > 0
            and right * math.log2(abs(left)) > _POWER_BITS
        ):
            raise RenderLimit(f"{left} ** {right} is too large a number")
        return super().call_binop(context, operator, left, right)


_text_env = _GuardedEnvironment(undefined=ChainableUndefined, autoescape=False)
_html_env = _GuardedEnvironment(undefined=ChainableUndefined, autoescape=True)


def _per_language(raw: Any) -> Any:
    """A plain text stands for English; nothing stands for no text."""
    if raw is None:
        return {}
    if isinstance(raw, str):
        return {"en": raw}
    return raw


def _syntax(source: str) -> str:
    try:
        _text_env.parse(source)
    except TemplateSyntaxError as exc:
        raise ValueError(f"line {exc.lineno}: {exc.message}") from None
    return source


Source = Annotated[str, AfterValidator(_syntax)]  # Jinja2 text, its syntax checked


class MessageTemplate(BaseModel):
    """A template as written in a YAML/JSON file, posted to the API and stored: one model for all.
    `subject` and `html` are optional (an SMS or plain-text email has neither), except that email
    needs a subject; each text is one string (English) or one per language."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        ..., pattern=r"^[a-z0-9_-]{1,100}$", description="1-100 lower-case letters, digits, _ and -"
    )
    channel: Literal["email", "sms", "webhook", "wechat", "wecom"]
    description: str = Field("", max_length=1000)
    subject: dict[Language, Source] = Field(default_factory=dict, description="email only: per language")
    text: dict[Language, Source] = Field(..., description="the text per language (or one text: English)")
    html: dict[Language, Source] = Field(default_factory=dict, description="email only, optional")

    _normalise = field_validator("subject", "text", "html", mode="before")(_per_language)

    @model_validator(mode="after")
    def _required_parts(self) -> MessageTemplate:
        if not self.text:
            raise ValueError("text is required (a text, or one per language: {en: …, zh: …})")
        if self.channel == "email" and not self.subject:
            raise ValueError("an email template needs a subject (a text, or one per language)")
        if self.channel == "wechat":
            for lang, source in self.text.items():
                first = next((line.strip() for line in source.splitlines() if line.strip()), "")
                if not first.startswith(("template:", "subscribe:")):
                    raise ValueError(
                        f"text.{lang}: a WeChat template starts with 'template: ID' (a template"
                        " message) or 'subscribe: ID' (a subscribe message), the id from the Official"
                        " Account's console, then one 'field: value' line per data field"
                    )
        return self

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()


@dataclass(frozen=True)
class BrokenTemplate:
    """A stored template that no longer passes the checks: listed with its error, never used."""

    name: str
    channel: str
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "channel": self.channel, "error": self.error}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None
    lang: str


def template_from_dict(raw: Any) -> MessageTemplate:
    """Validate a template definition; the error names the template, the part and the language
    (`cart.text.zh: line 2: …`)."""
    if not isinstance(raw, dict):
        raise InvalidInput("a template is a mapping with name, channel and text")
    try:
        return MessageTemplate.model_validate(raw)
    except ValidationError as exc:
        name = str(raw.get("name") or "template")
        first = exc.errors()[0]
        where = ".".join(str(x) for x in (name, *first["loc"]))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InvalidInput(str(first["msg"]).removeprefix("Value error, ") + more, where) from None


@lru_cache(maxsize=1)
def _presets() -> dict[str, MessageTemplate]:
    out = {}
    for entry in resources.files("clm.channels").joinpath("presets").iterdir():
        if entry.name.endswith(".yaml"):
            t = template_from_dict(yaml.safe_load(entry.read_text("utf-8")))
            out[t.name] = t
    return out


def _stored(row: Any) -> MessageTemplate | BrokenTemplate:
    try:
        return template_from_dict(row.definition)
    except InvalidInput as exc:
        return BrokenTemplate(row.name, row.channel, exc.message)


def list_templates(engine: Engine) -> list[MessageTemplate | BrokenTemplate]:
    """Every template, ready-made and stored; a stored one that fails the checks is listed with
    its error (and cannot be used) rather than hiding all the others."""
    found: dict[str, MessageTemplate | BrokenTemplate] = dict(_presets())
    with engine.connect() as conn:
        for r in conn.execute(select(message_templates)):
            found[r.name] = _stored(r)
    return [found[k] for k in sorted(found)]


def get_template(engine: Engine, name: str) -> MessageTemplate:
    with engine.connect() as conn:
        row = conn.execute(select(message_templates).where(message_templates.c.name == name)).first()
    if row is not None:
        template = _stored(row)
        if isinstance(template, BrokenTemplate):
            raise InvalidInput(f"the stored template cannot be used: {template.error}", name)
        return template
    preset = _presets().get(name)
    if preset is None:
        raise NotFound(f"no template named {name!r}")
    return preset


def save_template(engine: Engine, template: MessageTemplate) -> None:
    values = {"channel": template.channel, "definition": template.as_dict(), "updated_at": utcnow()}
    with engine.begin() as conn:
        done = conn.execute(
            update(message_templates).where(message_templates.c.name == template.name).values(**values)
        ).rowcount
        if not done:
            conn.execute(insert(message_templates).values(name=template.name, **values))


def load_template_file(path: Path) -> MessageTemplate:
    return template_from_dict(read_definition(path))


def _pick(texts: Mapping[Any, str], lang: str) -> str:
    return texts.get(lang) or texts.get("en") or next(iter(texts.values()), "")


@lru_cache(maxsize=512)
def _compiled(source: str, html: bool) -> Template:
    """Compiling is most of the cost of rendering: each text is compiled once per process."""
    return (_html_env if html else _text_env).from_string(source)


def _produce(source: str, html: bool, context: dict[str, Any], room: int) -> str:
    """One part, stopped as soon as it passes `room` characters (≤ bytes in UTF-8)."""
    chunks = []
    for chunk in _compiled(source, html).generate(context):
        room -= len(chunk)
        if room < 0:
            raise RenderLimit("")
        chunks.append(chunk)
    return "".join(chunks)


def with_names(context: dict[str, Any], lang: str) -> dict[str, Any]:
    """The context with `customer.salutation` and `customer.display_name` in the language of the
    text being rendered (clm.core.person_names: 张先生 / Mr Zhang, 张伟 / Wei Zhang)."""
    customer = context.get("customer")
    if not isinstance(customer, dict) or "salutation" in customer:
        return context
    first, last, gender = customer.get("first_name"), customer.get("last_name"), customer.get("gender")
    named = {
        **customer,
        "salutation": salutation(first, last, gender, lang),
        "display_name": display_name(first, last, lang),
    }
    return {**context, "customer": named}


def render(
    template: MessageTemplate, context: dict[str, Any], lang: str = "en", *, max_bytes: int | None = None
) -> Rendered:
    """Render for one recipient in their language (English when the template lacks it). Any
    error (not only Jinja's: a division by zero, a type error, a render guard) is an
    `InvalidInput` naming the template. `max_bytes`: the output cap, when the caller has read
    the settings already (else CLM_TEMPLATE_MAX_BYTES)."""
    lang = lang if lang in LANGUAGES else "en"
    context = with_names(context, lang if lang in template.text else "en")
    limit = max_bytes or settings().template_max_bytes
    too_large = f"the rendered message is larger than CLM_TEMPLATE_MAX_BYTES ({limit:,} bytes)"
    token = _budget.set([LOOP_LIMIT])
    try:
        parts: list[str | None] = []
        for texts, html in ((template.subject, False), (template.text, False), (template.html, True)):
            room = limit - sum(len(p or "") for p in parts)
            parts.append(_produce(_pick(texts, lang), html, context, room) if texts else None)
    except RenderLimit as exc:
        raise InvalidInput(f"cannot render: {str(exc) or too_large}", template.name) from None
    except Exception as exc:  # a template may raise anything Python can: it fails this message only
        raise InvalidInput(f"cannot render: {type(exc).__name__}: {exc}", template.name) from None
    finally:
        _budget.reset(token)
    subject, text, html_out = parts
    if sum(len(p.encode("utf-8")) for p in parts if p) > limit:
        raise InvalidInput(f"cannot render: {too_large}", template.name)
    return Rendered(" ".join((subject or "").split()), (text or "").strip(), html_out, lang)
