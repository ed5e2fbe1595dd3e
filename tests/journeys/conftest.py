"""A real SMTP server in-process (aiosmtpd) that keeps every message it accepts, and settings
that point the email channel at it."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message

import pytest
from aiosmtpd.controller import Controller


@dataclass
class Sink:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sink]:
    sink = Sink("127.0.0.1", _free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    monkeypatch.setenv("CLM_SMTP_HOST", sink.host)
    monkeypatch.setenv("CLM_SMTP_PORT", str(sink.port))
    monkeypatch.setenv("CLM_MAIL_FROM", "Shop <shop@example.com>")
    monkeypatch.setenv("CLM_SHOP_NAME", "Test Shop")
    monkeypatch.setenv("CLM_PUBLIC_URL", "https://clm.example.com")
    monkeypatch.setenv("CLM_QUIET_HOURS", "off")
    monkeypatch.setenv("CLM_FREQUENCY_CAP", "off")
    try:
        yield sink
    finally:
        controller.stop()
