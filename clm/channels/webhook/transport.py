"""Generic webhooks: a JSON POST of the message and its data to the message's own URL (`to`)
or the configured CLM_WEBHOOK_URL."""

from __future__ import annotations

from clm.channels.base import OutboundMessage
from clm.channels.http import HttpTransport
from clm.core.settings import settings


class WebhookTransport(HttpTransport):
    @classmethod
    def from_settings(cls) -> WebhookTransport:
        return cls(settings().webhook_url)

    def target(self, message: OutboundMessage) -> str | None:
        return message.to if message.to.startswith(("http://", "https://")) else self.url

    def payload(self, message: OutboundMessage) -> dict[str, object]:
        return {"id": message.key, "subject": message.subject, "text": message.text, **message.data}
