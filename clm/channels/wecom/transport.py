"""WeCom (企业微信) messages to a customer who is an external contact (外部联系人) of the corp's staff,
through the customer-contact "群发" API as WeCom documents it (developer.work.weixin.qq.com/
document/path/92135, "创建企业群发"):

    GET  /cgi-bin/gettoken?corpid=ID&corpsecret=SECRET            → {errcode, access_token, expires_in}
    POST /cgi-bin/externalcontact/add_msg_template?access_token=…
         {chat_type: "single", external_userid: [ID], sender: USERID, text: {content}}
                                                                   → {errcode, errmsg, fail_list, msgid}

The secret is the customer-contact secret (客户联系 secret) of the corp. WeCom does not deliver the
message at once: the staff member (`sender`) gets a task in their WeCom app and confirms it, which is
what a sales or service person's follow-up (回访) needs. The sender is the step's `sender`, else the
customer's `wecom_sender` attribute, else CLM_WECOM_SENDER; without one WeCom gives the task to
every staff member the customer has added. The address is the customer's `wecom_external_userid`.
(The welcome message API, send_welcome_msg, needs the welcome code of an add-contact callback,
valid for 20 seconds, so it cannot be sent from a journey's outbox.)

The token is kept per (API URL, corp id) in the process until five minutes before it expires;
one WeCom refuses (40014 invalid, 42001 expired, 41001 missing) is fetched again and the message
sent once more.

errcode → outcome: 0 with the customer not in fail_list: sent (msgid kept as the provider
reference); the customer in fail_list: failed for good (WeCom will not send to them: not a
contact, or their monthly limit of group messages is used up); 45009 / 45033 (rate or concurrency
limit) and -1 (busy) retried later; 84061 (no contact relation any more: the customer deleted the
staff member) failed for good and the customer's `wecom` consent withdrawn; 40096 (invalid
external_userid) failed for good and suppressed; others (a wrong sender 40003 / 60111, credentials)
failed for good."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from clm.channels.base import OutboundMessage, SendResult
from clm.channels.http import KeptAliveClient
from clm.core.errors import InvalidInput
from clm.core.settings import settings

TOKEN_REJECTED = frozenset({40014, 42001, 41001})
RETRY_LATER = frozenset({-1, 45009, 45033})
NO_RELATION = 84061
INVALID_CONTACT = 40096
MAX_CONTENT_BYTES = 4000  # text.content, as WeCom documents it
_MARGIN = 300  # seconds before expiry a cached token is no longer used


@dataclass
class _Token:
    value: str
    expires_at: float  # time.monotonic()


_tokens: dict[tuple[str, str], _Token] = {}  # (api url, corp id) -> token, shared in the process
_tokens_lock = threading.Lock()


class WeComTransport(KeptAliveClient):
    def __init__(
        self,
        corp_id: str | None,
        secret: str | None,
        api_url: str = "https://qyapi.weixin.qq.com",
        sender: str | None = None,
        timeout: float = 15,
    ) -> None:
        self.corp_id, self._secret, self.api_url = corp_id, secret, api_url.rstrip("/")
        self.sender, self.timeout = sender, timeout

    def __repr__(self) -> str:  # the secret never shows, not even in a traceback's locals
        return f"WeComTransport(api_url={self.api_url!r}, corp_id={self.corp_id!r})"

    @classmethod
    def from_settings(cls) -> WeComTransport:
        s = settings()
        return cls(s.wecom_corp_id, s.wecom_secret, s.wecom_api_url, s.wecom_sender)

    def _token(self, force_refresh: bool = False) -> str:
        key = (self.api_url, self.corp_id or "")
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached and not force_refresh and cached.expires_at - _MARGIN > time.monotonic():
                return cached.value
            assert self._client is not None
            response = self._client.get(
                f"{self.api_url}/cgi-bin/gettoken",
                params={"corpid": self.corp_id, "corpsecret": self._secret},
            )
            body = response.json()
            if body.get("errcode", 0) != 0 or "access_token" not in body:
                raise InvalidInput(
                    f"no access token: errcode {body.get('errcode')} {str(body.get('errmsg', ''))[:100]}",
                    "wecom",
                )
            _tokens[key] = _Token(body["access_token"], time.monotonic() + int(body.get("expires_in", 7200)))
            return str(body["access_token"])

    def payload(self, message: OutboundMessage) -> dict[str, object]:
        """The 群发 task for one customer (raises InvalidInput on an empty or too long text)."""
        content = message.text.strip()
        if not content:
            raise InvalidInput("the message is empty", "wecom")
        if len(content.encode("utf-8")) > MAX_CONTENT_BYTES:
            raise InvalidInput(f"the text is longer than WeCom's {MAX_CONTENT_BYTES} bytes", "wecom")
        body: dict[str, object] = {
            "chat_type": "single",
            "external_userid": [message.to],
            "text": {"content": content},
        }
        sender = str(message.data.get("sender") or self.sender or "")
        if sender:
            body["sender"] = sender
        return body

    def send(self, message: OutboundMessage) -> SendResult:
        if not (self.corp_id and self._secret):
            return SendResult(
                False,
                permanent=True,
                detail="WeCom is not configured: set CLM_WECOM_CORP_ID and CLM_WECOM_SECRET",
            )
        try:
            body = self.payload(message)
        except InvalidInput as exc:
            return SendResult(False, permanent=True, detail=exc.message)
        self.open()
        try:
            answer = self._post(body, self._token())
            if answer.get("errcode") in TOKEN_REJECTED:
                answer = self._post(body, self._token(force_refresh=True))
        except InvalidInput as exc:
            return SendResult(False, detail=exc.message)  # a token problem may pass: try again later
        except (httpx.HTTPError, ValueError) as exc:
            return SendResult(False, detail=f"WeCom unreachable or unreadable: {type(exc).__name__}")
        return outcome(answer, message.to)

    def _post(self, body: dict[str, object], token: str) -> dict[str, object]:
        assert self._client is not None
        response = self._client.post(
            f"{self.api_url}/cgi-bin/externalcontact/add_msg_template",
            params={"access_token": token},
            json=body,
        )
        result = response.json()
        return result if isinstance(result, dict) else {}


def outcome(answer: dict[str, object], external_userid: str) -> SendResult:
    code = answer.get("errcode")
    code = code if isinstance(code, int) else -2
    detail = f"WeCom errcode {code}: {str(answer.get('errmsg', ''))[:200]}"
    if code == 0:
        failed = answer.get("fail_list") or []
        if isinstance(failed, list) and external_userid in failed:
            return SendResult(
                False,
                permanent=True,
                detail="WeCom will not send to this customer (fail_list: not a contact of the sender,"
                " or their monthly limit of group messages is used up)",
            )
        msgid = str(answer.get("msgid", ""))
        return SendResult(True, detail=f"msgid {msgid}: the staff member confirms it in WeCom", ref=msgid)
    if code == NO_RELATION:
        return SendResult(
            False, permanent=True, withdrawn=True, detail=f"{detail} (no longer a contact: consent withdrawn)"
        )
    if code == INVALID_CONTACT:
        return SendResult(False, permanent=True, bounce=True, detail=f"{detail} (invalid external_userid)")
    if code in RETRY_LATER or code in TOKEN_REJECTED:
        return SendResult(False, detail=detail)
    return SendResult(False, permanent=True, detail=detail)
