"""WeChat Official Account template messages (模板消息) and subscribe messages (订阅通知), sent to an
OpenID of the configured account with the account's access token.

The token comes from the stable-token API (POST /cgi-bin/stable_token), which WeChat provides so
that several processes can share one token: each process asks for it, gets the same token while it
is valid, and keeps it until shortly before `expires_in` runs out. A token WeChat refuses (40001,
40014, 42001) is fetched again with force_refresh once and the message retried.

The message is POST /cgi-bin/message/template/send with {touser, template_id, url?, data,
client_msg_id}; the template id and its data fields come from the rendered template text, as for
the Chinese SMS providers (`clm.channels.sms.provider_template`): `template: ID` then one
`field: value` line each, an optional `url:` line the link the message opens. The outbox key is
`client_msg_id`, which WeChat uses to drop a repeat.

A text that starts with `subscribe: ID` instead is a subscribe message (订阅通知, for a person who
accepted that template in a subscribe pop-up): POST /cgi-bin/message/subscribe/bizsend with
{touser, template_id, page?, miniprogram?, data}; `url:` becomes `page`, and `miniprogram_appid:` /
`miniprogram_pagepath:` lines open a Mini Program (template messages take them too). bizsend has
no client_msg_id: a repeat is only prevented by the outbox.

errcode → outcome: 0 sent (WeChat's msgid kept as the provider reference); 45009 (daily API
quota), 45047 (too many messages to this person) and -1 (busy) retried later; 43004 (the person no
longer follows the account) and 43101 (the person refused messages) failed for good and the
customer's `wechat` consent withdrawn; 40003 (invalid OpenID) failed for good and the OpenID
suppressed; other codes (40037 a wrong template id, 47003 a data value the template refuses, 41030 a wrong
page) failed for good. Both kinds map the same codes: for a subscribe message 43101 means the
person has not accepted (or has rejected) that template."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from clm.channels.base import OutboundMessage, SendResult
from clm.channels.http import KeptAliveClient
from clm.channels.sms.provider_template import provider_call
from clm.core.errors import InvalidInput
from clm.core.settings import settings

TOKEN_REJECTED = frozenset({40001, 40014, 42001})
RETRY_LATER = frozenset({-1, 45009, 45047})
PERSON_REFUSED = {
    43004: "the person does not follow the account (consent withdrawn)",
    43101: "the person refused messages from the account (consent withdrawn)",
}
INVALID_OPENID = 40003
TEMPLATE_SEND = "/cgi-bin/message/template/send"
SUBSCRIBE_SEND = "/cgi-bin/message/subscribe/bizsend"
_MARGIN = 300  # seconds before expiry a cached token is no longer used


@dataclass
class _Token:
    value: str
    expires_at: float  # time.monotonic()


_tokens: dict[tuple[str, str], _Token] = {}  # (api url, app id) -> token, shared in the process
_tokens_lock = threading.Lock()


class WeChatTransport(KeptAliveClient):
    def __init__(
        self,
        app_id: str | None,
        app_secret: str | None,
        api_url: str = "https://api.weixin.qq.com",
        timeout: float = 15,
    ) -> None:
        self.app_id, self._secret, self.api_url, self.timeout = (
            app_id,
            app_secret,
            api_url.rstrip("/"),
            timeout,
        )

    def __repr__(self) -> str:  # the secret never shows, not even in a traceback's locals
        return f"WeChatTransport(api_url={self.api_url!r}, app_id={self.app_id!r})"

    @classmethod
    def from_settings(cls) -> WeChatTransport:
        s = settings()
        return cls(s.wechat_app_id, s.wechat_app_secret, s.wechat_api_url)

    def _token(self, force_refresh: bool = False) -> str:
        """The account's access token, from the process's cache while it has 5 minutes left."""
        key = (self.api_url, self.app_id or "")
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached and not force_refresh and cached.expires_at - _MARGIN > time.monotonic():
                return cached.value
            assert self._client is not None
            response = self._client.post(
                f"{self.api_url}/cgi-bin/stable_token",
                json={
                    "grant_type": "client_credential",
                    "appid": self.app_id,
                    "secret": self._secret,
                    "force_refresh": force_refresh,
                },
            )
            body = response.json()
            if "access_token" not in body:
                raise InvalidInput(
                    f"no access token: errcode {body.get('errcode')} {str(body.get('errmsg', ''))[:100]}",
                    "wechat",
                )
            _tokens[key] = _Token(body["access_token"], time.monotonic() + int(body.get("expires_in", 7200)))
            return str(body["access_token"])

    def payload(self, message: OutboundMessage) -> dict[str, object]:
        """The template or subscribe message for one recipient (raises InvalidInput on a bad
        template or OpenID); which one is `api_path(message)`."""
        app_id, sep, open_id = message.to.rpartition(":")
        if sep and app_id != self.app_id:
            raise InvalidInput(f"the OpenID belongs to app {app_id}, not to {self.app_id}", "wechat")
        subscribe = is_subscribe(message.text)
        text = message.text.replace("subscribe:", "template:", 1) if subscribe else message.text
        call = provider_call(text)
        fields = dict(call.params)
        url = fields.pop("url", None)
        mini_app, mini_path = fields.pop("miniprogram_appid", None), fields.pop("miniprogram_pagepath", None)
        body: dict[str, object] = {
            "touser": open_id,
            "template_id": call.template,
            "data": {name: {"value": value} for name, value in fields.items()},
        }
        if not subscribe:
            body["client_msg_id"] = message.key
        if url:
            body["page" if subscribe else "url"] = url
        if mini_app:
            body["miniprogram"] = {"appid": mini_app, "pagepath": mini_path or ""}
        return body

    def send(self, message: OutboundMessage) -> SendResult:
        if not (self.app_id and self._secret):
            return SendResult(
                False,
                permanent=True,
                detail="WeChat is not configured: set CLM_WECHAT_APP_ID and CLM_WECHAT_APP_SECRET",
            )
        try:
            body = self.payload(message)
        except InvalidInput as exc:
            return SendResult(False, permanent=True, detail=exc.message)
        self.open()
        assert self._client is not None
        try:
            path = SUBSCRIBE_SEND if is_subscribe(message.text) else TEMPLATE_SEND
            answer = self._post(path, body, self._token())
            if answer.get("errcode") in TOKEN_REJECTED:
                answer = self._post(path, body, self._token(force_refresh=True))
        except InvalidInput as exc:
            return SendResult(False, detail=exc.message)  # a token problem may pass: try again later
        except (httpx.HTTPError, ValueError) as exc:
            return SendResult(False, detail=f"WeChat unreachable or unreadable: {type(exc).__name__}")
        return outcome(answer)

    def _post(self, path: str, body: dict[str, object], token: str) -> dict[str, object]:
        assert self._client is not None
        response = self._client.post(f"{self.api_url}{path}", params={"access_token": token}, json=body)
        result = response.json()
        return result if isinstance(result, dict) else {}


def is_subscribe(text: str) -> bool:
    """A subscribe message's text starts with `subscribe: ID`, a template message's with `template:`."""
    return text.lstrip().startswith("subscribe:")


def outcome(answer: dict[str, object]) -> SendResult:
    code = answer.get("errcode")
    code = code if isinstance(code, int) else -2
    if code == 0:
        msgid = str(answer.get("msgid") or "")  # bizsend may not return one (WeChat documents none)
        return SendResult(True, detail=f"msgid {msgid}" if msgid else "sent", ref=msgid)
    detail = f"WeChat errcode {code}: {str(answer.get('errmsg', ''))[:200]}"
    if code in PERSON_REFUSED:
        return SendResult(False, permanent=True, withdrawn=True, detail=f"{detail} ({PERSON_REFUSED[code]})")
    if code == INVALID_OPENID:
        return SendResult(False, permanent=True, bounce=True, detail=f"{detail} (invalid OpenID)")
    if code in RETRY_LATER or code in TOKEN_REJECTED:
        return SendResult(False, detail=detail)
    return SendResult(False, permanent=True, detail=detail)
