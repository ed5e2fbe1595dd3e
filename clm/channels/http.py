"""The shared HTTP sender of the SMS and webhook channels: a JSON POST per message on one
keep-alive connection, with the outbox key as idempotency key."""

from __future__ import annotations

import httpx

from clm.channels.base import OutboundMessage, SendResult


class KeptAliveClient:
    """One keep-alive HTTP client per transport, opened for a batch of messages and closed after
    it (every HTTP channel's transport: generic SMS, webhook, Alibaba/Tencent Cloud, WeChat)."""

    timeout: float = 15
    _client: httpx.Client | None = None

    def client_headers(self) -> dict[str, str]:
        return {}

    def open(self) -> None:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, headers=self.client_headers())

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class HttpTransport(KeptAliveClient):
    """A JSON POST per message; 2xx sent, other 4xx permanent, 408/429/5xx and network errors temporary."""

    def __init__(self, url: str | None, token: str | None = None, timeout: float = 15) -> None:
        self.url, self.token, self.timeout = url, token, timeout

    def client_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def payload(self, message: OutboundMessage) -> dict[str, object]:
        return {"id": message.key, "to": message.to, "text": message.text}

    def target(self, message: OutboundMessage) -> str | None:
        return self.url

    def send(self, message: OutboundMessage) -> SendResult:
        url = self.target(message)
        if not url:
            return SendResult(False, permanent=True, detail=f"no URL configured for {message.channel}")
        self.open()
        assert self._client is not None
        try:
            response = self._client.post(
                url, json=self.payload(message), headers={"Idempotency-Key": message.key}
            )
        except httpx.HTTPError as exc:
            return SendResult(False, detail=f"{url} unreachable: {exc}")
        if response.is_success:
            return SendResult(True)
        temporary = response.status_code in (408, 429) or response.status_code >= 500
        return SendResult(
            False, permanent=not temporary, detail=f"{response.status_code} {response.text[:200]}"
        )
