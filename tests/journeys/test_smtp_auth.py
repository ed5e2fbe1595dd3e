"""The email transport logs in when the settings give a user (AUTH against a real aiosmtpd
server) and reports a refused login as a failure to retry, not a crash."""

from __future__ import annotations

import socket

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from clm.channels.base import OutboundMessage
from clm.channels.email.transport import EmailTransport


class Keep:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.received.append(envelope.content)
        return "250 OK"


def check(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"shop",
        b"s3cret",
    )
    return AuthResult(success=ok)


def test_login_with_the_configured_user():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    keep = Keep()
    controller = Controller(
        keep, hostname="127.0.0.1", port=port, authenticator=check, auth_require_tls=False
    )
    controller.start()
    try:
        good = EmailTransport(
            "127.0.0.1", port, user="shop", password="s3cret", sender="商城 <shop@example.com>"
        )
        result = good.send(OutboundMessage("k1", "email", "ann@example.com", "你好", "正文"))
        good.close()
        assert result.ok and len(keep.received) == 1
        assert b"From: =?utf-8?" in keep.received[0]  # a non-ASCII display name is encoded
        bad = EmailTransport("127.0.0.1", port, user="shop", password="wrong", timeout=3)
        refused = bad.send(OutboundMessage("k2", "email", "ann@example.com", "Hi", "text"))
        assert not refused.ok and not refused.permanent and not refused.bounce  # retried, nobody suppressed
        assert len(keep.received) == 1
    finally:
        controller.stop()
