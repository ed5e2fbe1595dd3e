"""WeCom (企业微信) customer-contact messages against a local fake of qyapi.weixin.qq.com that
implements the documented calls: GET /cgi-bin/gettoken?corpid=&corpsecret= ({errcode, access_token,
expires_in}; 40013 bad corp id, 40001 bad secret) and POST /cgi-bin/externalcontact/add_msg_template
?access_token= ({chat_type, external_userid, sender, text: {content}} → {errcode, errmsg, fail_list,
msgid}), with WeCom's codes: 42001 token expired, 40014 invalid token, 45009 rate limit, 40096 invalid
external_userid, 84061 no contact relation, fail_list for a customer it will not send to."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from clm.channels.base import OutboundMessage, transport
from clm.channels.wecom import transport as wecom
from clm.channels.wecom.transport import WeComTransport

CORP_ID, SECRET = "ww0123456789abcdef", "wecom-test-secret-Kd8"
# external_userid → errcode (or "fail" for fail_list)
ANSWERS: dict[str, int | str] = {
    "wm-ratelimited-01": 45009,
    "wm-invalid-00001": 40096,
    "wm-deleted-00001": 84061,
    "wm-overlimit-001": "fail",
}
STAFF = {"zhangsan", "lisi"}


class FakeWeCom(BaseHTTPRequestHandler):
    tokens_issued: ClassVar[list[str]] = []
    valid_token: ClassVar[str | None] = None
    expired: ClassVar[bool] = False
    tasks: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path != "/cgi-bin/gettoken":
            return self._answer({"errcode": 404, "errmsg": "no such api"}, 404)
        if query.get("corpid") != CORP_ID:
            return self._answer({"errcode": 40013, "errmsg": "invalid corpid"})
        if query.get("corpsecret") != SECRET:
            return self._answer({"errcode": 40001, "errmsg": "invalid credential"})
        cls = FakeWeCom
        cls.valid_token, cls.expired = f"WWTOKEN-{len(cls.tokens_issued) + 1}", False
        cls.tokens_issued.append(cls.valid_token)
        return self._answer(
            {"errcode": 0, "errmsg": "ok", "access_token": cls.valid_token, "expires_in": 7200}
        )

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        token = parse_qs(url.query).get("access_token", [""])[0]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if url.path != "/cgi-bin/externalcontact/add_msg_template":
            return self._answer({"errcode": 404, "errmsg": "no such api"}, 404)
        if token != FakeWeCom.valid_token:
            return self._answer({"errcode": 40014, "errmsg": "invalid access_token"})
        if FakeWeCom.expired:
            return self._answer({"errcode": 42001, "errmsg": "access_token expired"})
        if body.get("chat_type", "single") != "single" or not isinstance(body.get("external_userid"), list):
            return self._answer({"errcode": 40058, "errmsg": "invalid chat_type or external_userid"})
        if "sender" in body and body["sender"] not in STAFF:
            return self._answer({"errcode": 60111, "errmsg": "invalid string value `userid`"})
        content = (body.get("text") or {}).get("content", "")
        if not content or len(content.encode()) > 4000:
            return self._answer({"errcode": 41053, "errmsg": "content is empty or too long"})
        external = body["external_userid"][0]
        answer = ANSWERS.get(external, 0)
        if isinstance(answer, int) and answer:
            return self._answer({"errcode": answer, "errmsg": "refused", "fail_list": []})
        FakeWeCom.tasks.append(body)
        fail = [external] if answer == "fail" else []
        return self._answer(
            {"errcode": 0, "errmsg": "ok", "fail_list": fail, "msgid": f"msg{len(FakeWeCom.tasks)}"}
        )

    def _answer(self, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def fake_wecom(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    FakeWeCom.tokens_issued, FakeWeCom.valid_token, FakeWeCom.expired, FakeWeCom.tasks = [], None, False, []
    wecom._tokens.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeWeCom)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    for name, value in (
        ("CLM_WECOM_CORP_ID", CORP_ID),
        ("CLM_WECOM_SECRET", SECRET),
        ("CLM_WECOM_API_URL", url),
        ("CLM_WECOM_SENDER", "lisi"),
    ):
        monkeypatch.setenv(name, value)
    yield url
    server.shutdown()
    server.server_close()
    wecom._tokens.clear()


def _to(
    external: str, text: str = "王女士您好，我是您的顾问张三，想回访一下您上周的订单。", **data: Any
) -> OutboundMessage:
    return OutboundMessage("k-1", "wecom", external, "", text, data=data)


def test_a_follow_up_becomes_a_task_for_the_named_staff_member(fake_wecom):
    sender = transport("wecom")
    assert isinstance(sender, WeComTransport)
    result = sender.send(_to("wmAbCdEf0123456789", sender="zhangsan"))
    assert result.ok and result.ref == "msg1", result.detail
    assert FakeWeCom.tasks[0] == {
        "chat_type": "single",
        "external_userid": ["wmAbCdEf0123456789"],
        "sender": "zhangsan",
        "text": {"content": "王女士您好，我是您的顾问张三，想回访一下您上周的订单。"},
    }
    assert sender.send(_to("wmAbCdEf0123456789")).ok  # no sender named: CLM_WECOM_SENDER
    assert FakeWeCom.tasks[1]["sender"] == "lisi"
    assert FakeWeCom.tokens_issued == ["WWTOKEN-1"]  # one token for both
    sender.close()


def test_an_expired_token_is_fetched_again_once(fake_wecom):
    sender = transport("wecom")
    assert sender.send(_to("wmAbCdEf0123456789")).ok
    FakeWeCom.expired = True
    result = sender.send(_to("wmAbCdEf0123456789"))
    assert result.ok, result.detail
    assert FakeWeCom.tokens_issued == ["WWTOKEN-1", "WWTOKEN-2"]


def test_wecom_codes_become_outcomes(fake_wecom):
    sender = transport("wecom")
    limited = sender.send(_to("wm-ratelimited-01"))
    invalid = sender.send(_to("wm-invalid-00001"))
    deleted = sender.send(_to("wm-deleted-00001"))
    over = sender.send(_to("wm-overlimit-001"))
    wrong_staff = sender.send(_to("wmAbCdEf0123456789", sender="nobody"))
    too_long = sender.send(_to("wmAbCdEf0123456789", "长" * 1400))
    assert not limited.ok and not limited.permanent and "45009" in limited.detail
    assert invalid.permanent and invalid.bounce and "40096" in invalid.detail
    assert deleted.permanent and deleted.withdrawn and "consent withdrawn" in deleted.detail
    assert over.permanent and not over.bounce and "fail_list" in over.detail
    assert wrong_staff.permanent and "60111" in wrong_staff.detail
    assert too_long.permanent and "4000 bytes" in too_long.detail
    assert len(FakeWeCom.tasks) == 1  # only the over-limit customer's task reached the fake's list


def test_a_wrong_secret_gets_no_token_and_never_shows(fake_wecom):
    wrong = WeComTransport(CORP_ID, "not-the-secret", fake_wecom)
    result = wrong.send(_to("wmAbCdEf0123456789"))
    assert not result.ok and "40001" in result.detail
    assert "not-the-secret" not in result.detail and "not-the-secret" not in repr(wrong)
    unset = WeComTransport(None, None).send(_to("wmAbCdEf0123456789"))
    assert unset.permanent and "CLM_WECOM_CORP_ID" in unset.detail
