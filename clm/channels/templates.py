"""Message templates: Jinja2 in a sandbox (a template cannot reach Python internals or the
file system), one text per language (en, zh), for email (subject, text, optional HTML), SMS
(text) and webhooks. The presets in `presets/` ship with CLM; `clm templates add FILE` stores
more in the database (a stored template of the same name wins)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jinja2 import ChainableUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import Engine, insert, select, update

from clm.channels.base import CHANNELS
from clm.channels.tables import message_templates
from clm.core.definitions import read_definition
from clm.core.errors import InvalidInput, NotFound
from clm.core.timeutil import utcnow

LANGUAGES = ("en", "zh")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")
_text_env = ImmutableSandboxedEnvironment(undefined=ChainableUndefined, autoescape=False)
_html_env = ImmutableSandboxedEnvironment(undefined=ChainableUndefined, autoescape=True)


@dataclass(frozen=True)
class MessageTemplate:
    name: str
    channel: str
    description: str
    subject: dict[str, str]  # language → text
    text: dict[str, str]
    html: dict[str, str]
    builtin: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "channel": self.channel,
            "description": self.description,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
        }


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None
    lang: str


def _by_language(name: str, key: str, raw: Any, required: bool) -> dict[str, str]:
    if raw is None:
        if required:
            raise InvalidInput("is required (a text, or one per language: {en: …, zh: …})", f"{name}.{key}")
        return {}
    if isinstance(raw, str):
        raw = {"en": raw}
    if not isinstance(raw, dict) or not raw or set(raw) - set(LANGUAGES):
        raise InvalidInput(f"give a text or one per language ({', '.join(LANGUAGES)})", f"{name}.{key}")
    out = {}
    for lang, text in raw.items():
        env = _html_env if key == "html" else _text_env
        try:
            env.parse(str(text))
        except TemplateSyntaxError as exc:
            raise InvalidInput(f"line {exc.lineno}: {exc.message}", f"{name}.{key}.{lang}")
        out[lang] = str(text)
    return out


def template_from_dict(raw: Any, builtin: bool = False) -> MessageTemplate:
    """Validate a template definition; errors name the template, the part and the language."""
    if not isinstance(raw, dict):
        raise InvalidInput("a template is a mapping with name, channel and text")
    name = str(raw.get("name") or "")
    if not name or not set(name) <= _NAME_CHARS or len(name) > 100:
        raise InvalidInput("use 1-100 lower-case letters, digits, _ and -", "name")
    channel = raw.get("channel")
    if channel not in CHANNELS:
        raise InvalidInput(f"must be one of {', '.join(CHANNELS)}", f"{name}.channel")
    unknown = set(raw) - {"name", "channel", "description", "subject", "text", "html"}
    if unknown:
        raise InvalidInput(f"unknown keys {sorted(unknown)}", name)
    return MessageTemplate(
        name,
        channel,
        str(raw.get("description") or ""),
        _by_language(name, "subject", raw.get("subject"), channel == "email"),
        _by_language(name, "text", raw.get("text"), True),
        _by_language(name, "html", raw.get("html"), False),
        builtin,
    )


def _presets() -> dict[str, MessageTemplate]:
    out = {}
    for entry in resources.files("clm.channels").joinpath("presets").iterdir():
        if entry.name.endswith(".yaml"):
            t = template_from_dict(yaml.safe_load(entry.read_text("utf-8")), builtin=True)
            out[t.name] = t
    return out


def list_templates(engine: Engine) -> list[MessageTemplate]:
    found = _presets()
    with engine.connect() as conn:
        for r in conn.execute(select(message_templates)):
            found[r.name] = template_from_dict(r.definition)
    return [found[k] for k in sorted(found)]


def get_template(engine: Engine, name: str) -> MessageTemplate:
    with engine.connect() as conn:
        row = conn.execute(select(message_templates).where(message_templates.c.name == name)).first()
    if row is not None:
        return template_from_dict(row.definition)
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


def _pick(texts: dict[str, str], lang: str) -> str:
    return texts.get(lang) or texts.get("en") or next(iter(texts.values()), "")


@lru_cache(maxsize=512)
def _compiled(source: str, html: bool) -> Template:
    """Compiling is most of the cost of rendering: each text is compiled once per process."""
    return (_html_env if html else _text_env).from_string(source)


def render(template: MessageTemplate, context: dict[str, Any], lang: str = "en") -> Rendered:
    """Render for one recipient in their language (English when the template lacks it)."""
    lang = lang if lang in LANGUAGES else "en"
    try:
        subject = _compiled(_pick(template.subject, lang), False).render(context) if template.subject else ""
        text = _compiled(_pick(template.text, lang), False).render(context)
        html = _compiled(_pick(template.html, lang), True).render(context) if template.html else None
    except TemplateError as exc:
        raise InvalidInput(f"cannot render: {exc}", template.name)
    return Rendered(" ".join(subject.split()), text.strip(), html, lang)
