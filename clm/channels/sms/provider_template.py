"""The call a provider template SMS makes, read from our SMS template's rendered text.

Chinese SMS providers (Alibaba Cloud, Tencent Cloud) only deliver pre-approved templates: CLM
sends the provider's template code and the values of its parameters, never free text. An SMS
template meant for them renders to one `name: value` per line, the first naming the provider's
template; a `sign:` line overrides the configured signature name:

    template: SMS_154950909
    name: {{ customer.last_name }}{{ customer.first_name }}
    product: {{ event.product_name }}

Alibaba Cloud takes the parameters by name (`${name}`), Tencent Cloud in the order written."""

from __future__ import annotations

import re
from dataclasses import dataclass

from clm.core.errors import InvalidInput

_KEY = re.compile(r"^[A-Za-z0-9_]{1,64}$")
MAX_PARAMS = 20


@dataclass(frozen=True)
class ProviderCall:
    template: str
    params: dict[str, str]  # in the order written
    sign: str | None = None


def provider_call(text: str) -> ProviderCall:
    """Parse the rendered text; a text that names no template is refused with the form to use."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("template:"):
        raise InvalidInput(
            "a provider SMS template must start with 'template: CODE' (the provider's template code)",
            "sms template",
        )
    pairs: list[tuple[str, str]] = []
    for line in lines:
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise InvalidInput(
                f"line {line[:40]!r} is not 'name: value'; a provider SMS template renders to"
                " 'template: CODE' and one 'name: value' line per parameter",
                "sms template",
            )
        pairs.append((key, value.strip()))
    if not pairs or pairs[0][0] != "template" or not pairs[0][1]:
        raise InvalidInput(
            "a provider SMS template must start with 'template: CODE' (the provider's template code)",
            "sms template",
        )
    template = pairs[0][1]
    sign = None
    params: dict[str, str] = {}
    for key, value in pairs[1:]:
        if key == "sign":
            sign = value
        elif key in params or key == "template":
            raise InvalidInput(f"parameter {key!r} is given twice", "sms template")
        else:
            params[key] = value
    if len(params) > MAX_PARAMS:
        raise InvalidInput(f"more than {MAX_PARAMS} parameters", "sms template")
    return ProviderCall(template, params, sign)


def national_number(e164: str) -> str:
    """A phone number as the Chinese providers' mainland form wants it: 13800000000 for +86,
    else the international digits without the plus (85212345678)."""
    return e164[3:] if e164.startswith("+86") else e164.lstrip("+")
