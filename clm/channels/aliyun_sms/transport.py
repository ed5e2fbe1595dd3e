"""Alibaba Cloud SMS: SendSms (API version 2017-05-25) as an RPC-style POST, signed as Alibaba
Cloud documents for RPC APIs ("Signature mechanism", help.aliyun.com/en/cmn/developer-reference/
signature-mechanism):

    CanonicalizedQueryString = the parameters sorted by name, each name and value percent-encoded
                               (RFC 3986: only A-Z a-z 0-9 - _ . ~ stay), joined as k=v with &
    StringToSign = METHOD & percentEncode("/") & percentEncode(CanonicalizedQueryString)
    Signature    = Base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))

The template code and its parameters come from the rendered SMS template (see
`clm.channels.sms.provider_template`); the outbox key travels as OutId."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from clm.channels.base import OutboundMessage, SendResult
from clm.channels.http import KeptAliveClient
from clm.channels.sms.provider_template import national_number, provider_call
from clm.core.errors import InvalidInput
from clm.core.settings import settings

API_VERSION = "2017-05-25"
# Codes from "API错误码" (help.aliyun.com/document_detail/101346.html).
RETRY_LATER = frozenset(
    {
        "isv.BUSINESS_LIMIT_CONTROL",  # flow control per number (1/min, 5/h, 10/day for codes)
        "isv.DAY_LIMIT_CONTROL",
        "isv.MONTH_LIMIT_CONTROL",
        "isp.SYSTEM_ERROR",
        "isv.OUT_OF_SERVICE",  # balance used up: sends again once topped up
        "Throttling",
        "Throttling.User",
        "ServiceUnavailable",
    }
)
# The number itself is refused for good: it goes on the suppression list, never tried again.
NUMBER_REFUSED = {
    "isv.MOBILE_NUMBER_ILLEGAL": "invalid mobile number",
    "isv.BLACK_KEY_CONTROL_LIMIT": "number on the blocklist (unsubscribed or carrier do-not-disturb)",
}


def percent_encode(text: str) -> str:
    """RFC 3986 encoding as Alibaba Cloud's signature wants it (space %20, * %2A, ~ kept)."""
    return quote(text, safe="~")


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"


def sign(method: str, params: Mapping[str, str], secret: str) -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSmsTransport(KeptAliveClient):
    def __init__(
        self,
        access_key_id: str | None,
        access_key_secret: str | None,
        sign_name: str | None,
        endpoint: str = "https://dysmsapi.aliyuncs.com/",
        region: str = "cn-hangzhou",
        timeout: float = 15,
    ) -> None:
        self.access_key_id, self._secret = access_key_id, access_key_secret
        self.sign_name, self.endpoint, self.region, self.timeout = sign_name, endpoint, region, timeout

    def __repr__(self) -> str:  # the secret never shows, not even in a traceback's locals
        return f"AliyunSmsTransport(endpoint={self.endpoint!r}, access_key_id={self.access_key_id!r})"

    @classmethod
    def from_settings(cls) -> AliyunSmsTransport:
        s = settings()
        return cls(
            s.aliyun_access_key_id, s.aliyun_access_key_secret, s.aliyun_sms_sign_name, s.aliyun_sms_endpoint
        )

    def params(self, message: OutboundMessage, now: datetime | None = None) -> dict[str, str]:
        """The signed request parameters of one message (raises InvalidInput on a bad template)."""
        call = provider_call(message.text)
        sign_name = call.sign or self.sign_name
        if not sign_name:
            raise InvalidInput("no signature name: set CLM_ALIYUN_SMS_SIGN_NAME", "aliyun sms")
        params = {
            "AccessKeyId": self.access_key_id or "",
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": message.key,
            "PhoneNumbers": national_number(message.to),
            "RegionId": self.region,
            "SignName": sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": secrets.token_hex(16),
            "SignatureVersion": "1.0",
            "TemplateCode": call.template,
            "Timestamp": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
        }
        if call.params:
            params["TemplateParam"] = json.dumps(call.params, ensure_ascii=False, separators=(",", ":"))
        params["Signature"] = sign("POST", params, self._secret or "")
        return params

    def send(self, message: OutboundMessage) -> SendResult:
        if not (self.access_key_id and self._secret):
            return SendResult(
                False,
                permanent=True,
                detail="Alibaba Cloud SMS is not configured: set CLM_ALIYUN_ACCESS_KEY_ID and"
                " CLM_ALIYUN_ACCESS_KEY_SECRET",
            )
        try:
            params = self.params(message)
        except InvalidInput as exc:
            return SendResult(False, permanent=True, detail=exc.message)
        self.open()
        assert self._client is not None
        try:
            response = self._client.post(self.endpoint, data=params)
        except httpx.HTTPError as exc:
            return SendResult(False, detail=f"Alibaba Cloud SMS unreachable: {type(exc).__name__}")
        return outcome(response)


def outcome(response: httpx.Response) -> SendResult:
    """Alibaba Cloud's answer as our outcome: OK sent; flow control and service errors retried
    later; an invalid or blocklisted number failed for good and suppressed; any other code (a
    template, signature or account problem) failed for good."""
    try:
        body = response.json()
        code, text = str(body.get("Code", "")), str(body.get("Message", ""))[:200]
    except (ValueError, AttributeError):
        code, text = "", response.text[:200]
    if response.is_success and code == "OK":
        biz_id = str(body.get("BizId", ""))
        return SendResult(True, detail=f"BizId {biz_id}", ref=biz_id)
    detail = f"Alibaba Cloud SMS {code or response.status_code}: {text}"
    if code in NUMBER_REFUSED:
        return SendResult(False, permanent=True, bounce=True, detail=f"{detail} ({NUMBER_REFUSED[code]})")
    if (
        code in RETRY_LATER
        or code.startswith("Throttling")
        or response.status_code >= 500
        or response.status_code in (408, 429)
    ):
        return SendResult(False, detail=detail)
    return SendResult(False, permanent=True, detail=detail)
