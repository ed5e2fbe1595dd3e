"""Alibaba Cloud and Tencent Cloud SMS against local fake servers that implement each provider's
documented request format and check its signature with the test secret, independently of the
transport's own signing code:

- Alibaba Cloud, "Signature mechanism" for RPC APIs (help.aliyun.com/en/cmn/developer-reference/
  signature-mechanism): HMAC-SHA1 over METHOD&%2F&percentEncode(sorted, encoded query), key
  AccessKeySecret + "&"; its worked example (testid/testsecret, DescribeRegions) is checked below.
- Tencent Cloud, "Signature v3" (TC3-HMAC-SHA256) with SendSms 2021-01-11 (cloud.tencent.com/
  document/api/382/55981); error codes from cloud.tencent.com/document/api/382/59177.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote

import pytest
from sqlalchemy import select

from clm.channels.aliyun_sms.transport import AliyunSmsTransport, sign
from clm.channels.base import OutboundMessage, transport
from clm.channels.sms.provider_template import provider_call
from clm.channels.templates import save_template, template_from_dict
from clm.channels.tencent_sms.transport import TencentSmsTransport
from clm.core.errors import InvalidInput
from clm.customers.schemas import CustomerIn
from clm.customers.service import set_consent, upsert_customer
from clm.journeys.outbox import dispatch, queue_message
from clm.journeys.tables import outbox, suppressions

NOW = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai: no quiet hours
ALI_ID, ALI_SECRET = "LTAI-test-id", "ali-test-secret-Zq9"
TC_ID, TC_SECRET = "AKID-test-id", "tencent-test-secret-Xw7"


def _ali_encode(text: str) -> str:
    return quote(text, safe="-_.~")


class FakeAliyun(BaseHTTPRequestHandler):
    """dysmsapi.aliyuncs.com: SendSms as a form POST; the answer depends on the phone number."""

    received: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
        params = dict(parse_qsl(raw, keep_blank_values=True))
        given = params.pop("Signature", "")
        canonical = "&".join(f"{_ali_encode(k)}={_ali_encode(v)}" for k, v in sorted(params.items()))
        to_sign = f"POST&{_ali_encode('/')}&{_ali_encode(canonical)}"
        expected = base64.b64encode(
            hmac.new(f"{ALI_SECRET}&".encode(), to_sign.encode(), hashlib.sha1).digest()
        ).decode()
        if params.get("AccessKeyId") != ALI_ID or not hmac.compare_digest(given, expected):
            return self._answer(
                400,
                {
                    "Code": "SignatureDoesNotMatch",
                    "Message": "Specified signature is not matched with our calculation.",
                },
            )
        for required, value in (
            ("Action", "SendSms"),
            ("Version", "2017-05-25"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("Format", "JSON"),
        ):
            if params.get(required) != value:
                return self._answer(400, {"Code": "MissingParameter", "Message": required})
        FakeAliyun.received.append(params)
        phone = params["PhoneNumbers"]
        code = {
            "13800000002": "isv.BUSINESS_LIMIT_CONTROL",
            "13800000003": "isv.MOBILE_NUMBER_ILLEGAL",
            "13800000004": "isv.BLACK_KEY_CONTROL_LIMIT",
        }.get(phone, "OK")
        self._answer(
            200,
            {
                "Code": code,
                "Message": "OK" if code == "OK" else code,
                "BizId": f"9006197469364984{len(FakeAliyun.received):02d}^0",
                "RequestId": "F655A8D5",
            },
        )

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        return


def _tc3_hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class FakeTencent(FakeAliyun):
    """sms.tencentcloudapi.com: SendSms 2021-01-11 as a JSON POST signed with TC3-HMAC-SHA256."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        payload = self.rfile.read(int(self.headers["Content-Length"]))
        auth = self.headers.get("Authorization", "")
        ts = self.headers.get("X-TC-Timestamp", "0")
        try:
            algorithm, rest = auth.split(" ", 1)
            fields = dict(part.strip().split("=", 1) for part in rest.split(","))
            secret_id, day, service, terminator = fields["Credential"].split("/")
        except ValueError:
            return self._error("AuthFailure.InvalidAuthorization")
        signed = fields["SignedHeaders"].split(";")
        canonical_headers = "".join(
            f"{h}:{self.headers[h].strip().lower() if h == 'x-tc-action' else self.headers[h].strip()}\n"
            for h in signed
        )
        body_hash = hashlib.sha256(payload).hexdigest()
        canonical = f"POST\n/\n\n{canonical_headers}\n{fields['SignedHeaders']}\n{body_hash}"
        request_hash = hashlib.sha256(canonical.encode()).hexdigest()
        to_sign = f"TC3-HMAC-SHA256\n{ts}\n{day}/{service}/{terminator}\n{request_hash}"
        key = _tc3_hmac(_tc3_hmac(_tc3_hmac(f"TC3{TC_SECRET}".encode(), day), service), "tc3_request")
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if secret_id != TC_ID:
            return self._error("AuthFailure.SecretIdNotFound")
        if abs(int(ts) - time.time()) > 300 or day != datetime.fromtimestamp(int(ts), UTC).strftime(
            "%Y-%m-%d"
        ):
            return self._error("AuthFailure.SignatureExpire")
        if (
            (algorithm, service, terminator) != ("TC3-HMAC-SHA256", "sms", "tc3_request")
            or not hmac.compare_digest(fields["Signature"], expected)
            or "host" not in signed
            or "content-type" not in signed
        ):
            return self._error("AuthFailure.SignatureFailure")
        if (self.headers["X-TC-Action"], self.headers["X-TC-Version"]) != ("SendSms", "2021-01-11"):
            return self._error("InvalidAction")
        body = json.loads(payload)
        FakeTencent.received.append(body)
        phone = body["PhoneNumberSet"][0]
        code = {
            "+8613800000002": "LimitExceeded.PhoneNumberDailyLimit",
            "+8613800000003": "InvalidParameterValue.IncorrectPhoneNumber",
            "+8613800000004": "FailedOperation.PhoneNumberInBlacklist",
        }.get(phone, "Ok")
        status = {
            "SerialNo": f"5000:10457106691570536578494996{len(FakeTencent.received):02d}",
            "PhoneNumber": phone,
            "Fee": 1,
            "SessionContext": body.get("SessionContext", ""),
            "Code": code,
            "Message": "send success" if code == "Ok" else code,
            "IsoCode": "CN",
        }
        self._answer(200, {"Response": {"SendStatusSet": [status], "RequestId": "a0aabda6"}})

    def _error(self, code: str) -> None:
        self._answer(200, {"Response": {"Error": {"Code": code, "Message": code}, "RequestId": "ed93f3cb"}})


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def aliyun(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    FakeAliyun.received = []
    for url in _serve(FakeAliyun):
        for name, value in (
            ("CLM_SMS_PROVIDER", "aliyun"),
            ("CLM_ALIYUN_ACCESS_KEY_ID", ALI_ID),
            ("CLM_ALIYUN_ACCESS_KEY_SECRET", ALI_SECRET),
            ("CLM_ALIYUN_SMS_SIGN_NAME", "测试商城"),
            ("CLM_ALIYUN_SMS_ENDPOINT", url),
        ):
            monkeypatch.setenv(name, value)
        yield url


@pytest.fixture
def tencent(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    FakeTencent.received = []
    for url in _serve(FakeTencent):
        for name, value in (
            ("CLM_SMS_PROVIDER", "tencent"),
            ("CLM_TENCENT_SECRET_ID", TC_ID),
            ("CLM_TENCENT_SECRET_KEY", TC_SECRET),
            ("CLM_TENCENT_SMS_APP_ID", "1400006666"),
            ("CLM_TENCENT_SMS_SIGN_NAME", "测试商城"),
            ("CLM_TENCENT_SMS_ENDPOINT", url),
        ):
            monkeypatch.setenv(name, value)
        yield url


CART_TEXT = "template: SMS_154950909\nname: {{ customer.first_name }}\nshop: {{ shop.name }}"


def _message(phone: str, text: str = "template: SMS_1\nname: 伟\ncode: 1234") -> OutboundMessage:
    return OutboundMessage("out-1", "sms", phone, "", text)


def test_alibaba_signature_matches_the_documented_example():
    # the worked example of Alibaba Cloud's "Signature mechanism" page
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }
    assert sign("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_a_provider_template_text_gives_the_code_and_ordered_parameters():
    call = provider_call("template: 1110\n\nname: 张伟\nsign: 腾讯云\nurl: https://s.cn/a?b=1")
    assert (call.template, call.sign, list(call.params.items())) == (
        "1110",
        "腾讯云",
        [("name", "张伟"), ("url", "https://s.cn/a?b=1")],
    )
    with pytest.raises(InvalidInput, match="must start with 'template: CODE'"):
        provider_call("【测试商城】您的购物车还有商品")
    with pytest.raises(InvalidInput, match="given twice"):
        provider_call("template: 1\nname: a\nname: b")


def test_alibaba_outcomes_from_the_fake(aliyun):
    sms = transport("sms")
    assert isinstance(sms, AliyunSmsTransport)
    sent = sms.send(_message("+8613800000001"))
    assert sent.ok, sent.detail
    got = FakeAliyun.received[0]
    assert (got["PhoneNumbers"], got["SignName"], got["TemplateCode"], got["OutId"]) == (
        "13800000001",
        "测试商城",
        "SMS_1",
        "out-1",
    )
    assert json.loads(got["TemplateParam"]) == {"name": "伟", "code": "1234"}
    limited = sms.send(_message("+8613800000002"))
    assert not limited.ok and not limited.permanent and "isv.BUSINESS_LIMIT_CONTROL" in limited.detail
    invalid = sms.send(_message("+8613800000003"))
    assert (
        not invalid.ok and invalid.permanent and invalid.bounce and "invalid mobile number" in invalid.detail
    )
    blocked = sms.send(_message("+8613800000004"))
    assert blocked.permanent and blocked.bounce
    bad_template = sms.send(_message("+8613800000001", "您的购物车还有商品"))
    assert bad_template.permanent and "template: CODE" in bad_template.detail
    sms.close()
    # the fake checks the signature: the same request signed with another secret is refused
    wrong = AliyunSmsTransport(ALI_ID, "not-the-secret", "测试商城", aliyun)
    refused = wrong.send(_message("+8613800000001"))
    assert not refused.ok and refused.permanent and "SignatureDoesNotMatch" in refused.detail
    assert len(FakeAliyun.received) == 4  # neither the bad template nor the bad signature got through
    for result in (sent, limited, invalid, blocked, refused):
        assert ALI_SECRET not in result.detail and "not-the-secret" not in result.detail
    assert ALI_SECRET not in repr(sms)


def test_tencent_outcomes_from_the_fake(tencent):
    sms = transport("sms")
    assert isinstance(sms, TencentSmsTransport)
    sent = sms.send(_message("+8613800000001"))
    assert sent.ok, sent.detail
    assert FakeTencent.received[0] == {
        "PhoneNumberSet": ["+8613800000001"],
        "SmsSdkAppId": "1400006666",
        "SignName": "测试商城",
        "TemplateId": "SMS_1",
        "TemplateParamSet": ["伟", "1234"],
        "SessionContext": "out-1",
    }
    limited = sms.send(_message("+8613800000002"))
    assert (
        not limited.ok and not limited.permanent and "LimitExceeded.PhoneNumberDailyLimit" in limited.detail
    )
    invalid = sms.send(_message("+8613800000003"))
    assert invalid.permanent and invalid.bounce and "invalid mobile number" in invalid.detail
    blocked = sms.send(_message("+8613800000004"))
    assert blocked.permanent and blocked.bounce and "unsubscribed" in blocked.detail
    sms.close()
    wrong = TencentSmsTransport(TC_ID, "not-the-secret", "1400006666", "测试商城", tencent)
    refused = wrong.send(_message("+8613800000001"))
    assert not refused.ok and refused.permanent and "AuthFailure.SignatureFailure" in refused.detail
    assert len(FakeTencent.received) == 4
    for result in (sent, limited, invalid, blocked, refused):
        assert TC_SECRET not in result.detail and "not-the-secret" not in result.detail
    assert TC_SECRET not in repr(sms)


def _queue(engine, phone: str, key: str) -> int:
    cid = upsert_customer(engine, CustomerIn(phone=phone, first_name="伟", country="CN"), actor="t")[0].id
    set_consent(engine, cid, "sms", True, source="t")
    queue_message(engine, cid, "cart-provider-sms", key=key, channel="sms", kind="marketing", not_before=NOW)
    return cid


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_outbox_messages_go_through_each_provider_with_their_outcomes(engine, provider, request, monkeypatch):
    request.getfixturevalue(provider)
    monkeypatch.setenv("CLM_SHOP_NAME", "小明的店")
    save_template(
        engine, template_from_dict({"name": "cart-provider-sms", "channel": "sms", "text": {"zh": CART_TEXT}})
    )
    _queue(engine, "+8613800000001", "k-ok")
    _queue(engine, "+8613800000002", "k-limited")
    _queue(engine, "+8613800000003", "k-invalid")
    no_consent = upsert_customer(engine, CustomerIn(phone="+8613800000005"), actor="t")[0].id
    queue_message(
        engine, no_consent, "cart-provider-sms", key="k-none", channel="sms", kind="marketing", not_before=NOW
    )
    report = dispatch(engine, NOW)
    assert (report.sent, report.retried, report.failed, report.skipped) == (1, 1, 1, 1)
    received = FakeAliyun.received if provider == "aliyun" else FakeTencent.received
    assert len(received) == 3  # the customer without SMS consent was never sent to
    first = received[0]
    if provider == "aliyun":
        assert json.loads(first["TemplateParam"]) == {"name": "伟", "shop": "小明的店"}
    else:
        assert first["TemplateParamSet"] == ["伟", "小明的店"]
    with engine.connect() as conn:
        status = dict(conn.execute(select(outbox.c.key, outbox.c.status)).all())
        suppressed = conn.execute(select(suppressions.c.channel, suppressions.c.address)).all()
        reasons = " ".join(r or "" for r in conn.execute(select(outbox.c.reason)).scalars())
    assert status == {"k-ok": "sent", "k-limited": "queued", "k-invalid": "failed", "k-none": "skipped"}
    assert suppressed == [("sms", "+8613800000003")]  # never tried again
    assert ALI_SECRET not in reasons and TC_SECRET not in reasons
