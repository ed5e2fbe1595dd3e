"""Tencent Cloud SMS: SendSms (API version 2021-01-11), a JSON POST signed with TC3-HMAC-SHA256
as Tencent Cloud documents it ("Signature v3" in the SMS API docs,
tencentcloud.com/document/product/382 > Making API Requests; common parameters: .../382/40466):

    CanonicalRequest = POST \\n / \\n (empty query) \\n content-type:…\\nhost:…\\n \\n content-type;host
                       \\n hex(SHA256(payload))
    StringToSign     = TC3-HMAC-SHA256 \\n timestamp \\n date/sms/tc3_request
                       \\n hex(SHA256(CanonicalRequest))
    key              = HMAC(HMAC(HMAC("TC3" + SecretKey, date), "sms"), "tc3_request")
    Signature        = hex(HMAC-SHA256(key, StringToSign))

with `date` the UTC day of the timestamp. The template id and its parameters (in order) come from
the rendered SMS template (`clm.channels.sms.provider_template`); the outbox key travels as
SessionContext, which Tencent Cloud returns unchanged."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from clm.channels.base import OutboundMessage, SendResult
from clm.channels.http import KeptAliveClient
from clm.channels.sms.provider_template import provider_call
from clm.core.errors import InvalidInput
from clm.core.settings import settings

SERVICE, ACTION, VERSION = "sms", "SendSms", "2021-01-11"
CONTENT_TYPE = "application/json; charset=utf-8"
# Per-number codes from "错误码" (cloud.tencent.com/document/api/382/59177).
NUMBER_REFUSED = {
    "InvalidParameterValue.IncorrectPhoneNumber": "invalid mobile number",
    "FailedOperation.PhoneNumberInBlacklist": "number on the do-not-disturb list (unsubscribed or carrier)",
}


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def canonical_request(host: str, payload: bytes) -> str:
    return "\n".join(
        (
            "POST",
            "/",
            "",
            f"content-type:{CONTENT_TYPE}\nhost:{host}\n",
            "content-type;host",
            hashlib.sha256(payload).hexdigest(),
        )
    )


def authorization(secret_id: str, secret_key: str, host: str, payload: bytes, timestamp: int) -> str:
    """The Authorization header of one request."""
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{day}/{SERVICE}/tc3_request"
    to_sign = "\n".join(
        (
            "TC3-HMAC-SHA256",
            str(timestamp),
            scope,
            hashlib.sha256(canonical_request(host, payload).encode()).hexdigest(),
        )
    )
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), day), SERVICE), "tc3_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host,"
        f" Signature={signature}"
    )


class TencentSmsTransport(KeptAliveClient):
    def __init__(
        self,
        secret_id: str | None,
        secret_key: str | None,
        app_id: str | None,
        sign_name: str | None,
        endpoint: str = "https://sms.tencentcloudapi.com/",
        region: str = "ap-guangzhou",
        timeout: float = 15,
    ) -> None:
        self.secret_id, self._secret_key, self.app_id = secret_id, secret_key, app_id
        self.sign_name, self.endpoint, self.region, self.timeout = sign_name, endpoint, region, timeout

    def __repr__(self) -> str:  # the secret never shows, not even in a traceback's locals
        return f"TencentSmsTransport(endpoint={self.endpoint!r}, secret_id={self.secret_id!r})"

    @classmethod
    def from_settings(cls) -> TencentSmsTransport:
        s = settings()
        return cls(
            s.tencent_secret_id,
            s.tencent_secret_key,
            s.tencent_sms_app_id,
            s.tencent_sms_sign_name,
            s.tencent_sms_endpoint,
            s.tencent_sms_region,
        )

    def request(self, message: OutboundMessage, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one message's signed request (raises InvalidInput on a bad template)."""
        call = provider_call(message.text)
        sign_name = call.sign or self.sign_name
        if not sign_name:
            raise InvalidInput("no signature name: set CLM_TENCENT_SMS_SIGN_NAME", "tencent sms")
        body = {
            "PhoneNumberSet": [message.to],
            "SmsSdkAppId": self.app_id,
            "SignName": sign_name,
            "TemplateId": call.template,
            "TemplateParamSet": list(call.params.values()),
            "SessionContext": message.key,
        }
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        host = urlsplit(self.endpoint).netloc
        ts = timestamp if timestamp is not None else int(time.time())
        headers = {
            "Authorization": authorization(self.secret_id or "", self._secret_key or "", host, payload, ts),
            "Content-Type": CONTENT_TYPE,
            "Host": host,
            "X-TC-Action": ACTION,
            "X-TC-Timestamp": str(ts),
            "X-TC-Version": VERSION,
            "X-TC-Region": self.region,
        }
        return payload, headers

    def send(self, message: OutboundMessage) -> SendResult:
        if not (self.secret_id and self._secret_key and self.app_id):
            return SendResult(
                False,
                permanent=True,
                detail="Tencent Cloud SMS is not configured: set CLM_TENCENT_SECRET_ID,"
                " CLM_TENCENT_SECRET_KEY and CLM_TENCENT_SMS_APP_ID",
            )
        try:
            payload, headers = self.request(message)
        except InvalidInput as exc:
            return SendResult(False, permanent=True, detail=exc.message)
        self.open()
        assert self._client is not None
        try:
            response = self._client.post(self.endpoint, content=payload, headers=headers)
        except httpx.HTTPError as exc:
            return SendResult(False, detail=f"Tencent Cloud SMS unreachable: {type(exc).__name__}")
        return outcome(response)


def _temporary(code: str) -> bool:
    return code.startswith(("LimitExceeded", "RequestLimitExceeded", "InternalError")) and code not in (
        "LimitExceeded.PhoneNumberCountLimit",  # more than 200 numbers in one call: never better
    )


def outcome(response: httpx.Response) -> SendResult:
    """Tencent Cloud's answer as our outcome. A request-level Error (signature, credentials, rate)
    or the one number's SendStatus: Ok sent; LimitExceeded.*, RequestLimitExceeded and
    InternalError.* retried later; an invalid or do-not-disturb number failed for good and
    suppressed; any other code failed for good."""
    if response.status_code >= 500:
        return SendResult(False, detail=f"Tencent Cloud SMS {response.status_code}")
    try:
        answer = response.json()["Response"]
        error = answer.get("Error")
        if error:
            code, text = str(error.get("Code", "")), str(error.get("Message", ""))
        else:
            status = answer["SendStatusSet"][0]
            code, text = str(status.get("Code", "")), str(status.get("Message", ""))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return SendResult(False, detail=f"Tencent Cloud SMS {response.status_code}: {response.text[:200]}")
    if code == "Ok":
        serial = str(status.get("SerialNo", ""))
        return SendResult(True, detail=f"SerialNo {serial}", ref=serial)
    detail = f"Tencent Cloud SMS {code}: {text[:200]}"
    if code in NUMBER_REFUSED:
        return SendResult(False, permanent=True, bounce=True, detail=f"{detail} ({NUMBER_REFUSED[code]})")
    if _temporary(code):
        return SendResult(False, detail=detail)
    return SendResult(False, permanent=True, detail=detail)
