"""SMS through a provider's HTTP API: a JSON POST of {id, to, text} with a bearer token. The id
(the outbox key) lets the provider drop a repeat."""

from __future__ import annotations

from clm.channels.http import HttpTransport
from clm.core.settings import settings


class SmsTransport(HttpTransport):
    @classmethod
    def from_settings(cls) -> SmsTransport:
        s = settings()
        return cls(s.sms_url, s.sms_token)
