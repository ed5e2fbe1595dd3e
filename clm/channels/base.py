"""What every transport takes and returns, and the registry of transports by channel name.

To add a channel: make a folder `clm/channels/<name>/` with a `transport.py` holding a class
with `from_settings()`, `open()`, `send(message) -> SendResult` and `close()`, and register it in
`transport()` (an SMS provider: in its `sms_providers`, chosen by CLM_SMS_PROVIDER). A channel that
reaches a person goes in PERSONAL_CHANNELS (consent, cap and quiet hours then apply to it) and
needs an address rule in `clm.journeys.channel_choice` (docs/journeys.md, "Channels and templates")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class OutboundMessage:
    """One rendered message for one recipient. `key` is the idempotency key of the outbox row;
    it becomes the email Message-ID and the SMS/webhook request id, so a receiver can tell a
    message it has already seen."""

    key: str
    channel: str
    to: str
    subject: str
    text: str
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # webhook payload extras


@dataclass(frozen=True)
class SendResult:
    ok: bool
    permanent: bool = False  # do not retry this message (refused for good)
    detail: str = ""
    bounce: bool = False  # the address itself was refused for good: never write to it again
    # the person refused messages on this channel (WeChat 43101, WeCom contact deleted): their
    # consent for the channel is withdrawn, as an unsubscribe link would
    withdrawn: bool = False
    ref: str = ""  # the provider's id of the sent message (its delivery receipt names it)


class Transport(Protocol):
    def open(self) -> None: ...

    def send(self, message: OutboundMessage) -> SendResult: ...

    def close(self) -> None: ...


def transport(channel: str) -> Transport:
    """A transport for the channel, configured from the settings. The sms channel goes through
    the provider CLM_SMS_PROVIDER names (http, aliyun, tencent): consent, cap and quiet hours
    are the sms channel's whichever provider carries it."""
    from clm.channels.aliyun_sms.transport import AliyunSmsTransport
    from clm.channels.email.transport import EmailTransport
    from clm.channels.sms.transport import SmsTransport
    from clm.channels.tencent_sms.transport import TencentSmsTransport
    from clm.channels.webhook.transport import WebhookTransport
    from clm.channels.wechat.transport import WeChatTransport
    from clm.channels.wecom.transport import WeComTransport
    from clm.core.settings import settings

    sms_providers: dict[str, type[Any]] = {
        "http": SmsTransport,
        "aliyun": AliyunSmsTransport,
        "tencent": TencentSmsTransport,
    }
    provider = settings().sms_provider
    if channel == "sms" and provider not in sms_providers:
        raise ValueError(f"CLM_SMS_PROVIDER={provider!r} is not one of {', '.join(sms_providers)}")
    transports: dict[str, type[Any]] = {
        "email": EmailTransport,
        "sms": sms_providers.get(provider, SmsTransport),
        "webhook": WebhookTransport,
        "wechat": WeChatTransport,
        "wecom": WeComTransport,
    }
    if channel not in transports:
        raise ValueError(f"no transport for channel {channel!r}; channels: {', '.join(transports)}")
    return transports[channel].from_settings()


CHANNELS = ("email", "sms", "webhook", "wechat", "wecom")
# Channels that reach a person: consent, the frequency cap and quiet hours apply to them all
# together (a webhook goes to another system, not to the customer).
PERSONAL_CHANNELS = ("email", "sms", "wechat", "wecom")
