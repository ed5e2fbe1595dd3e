"""WeChat Official Account template messages against a local fake of api.weixin.qq.com that
implements the documented calls: POST /cgi-bin/stable_token ({grant_type, appid, secret,
force_refresh} → {access_token, expires_in}) and POST /cgi-bin/message/template/send?access_token=
({touser, template_id, url, data, client_msg_id} → {errcode, errmsg, msgid}) and subscribe messages,
POST /cgi-bin/message/subscribe/bizsend ({touser, template_id, page, data}; 47003 for a `thing`
value over 20 characters; the fake returns a msgid as WeChat does in practice), with WeChat's error
codes (40001/42001 token refused or expired, 43004 not following, 43101 refused, 45009 quota)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from clm.channels.base import OutboundMessage, transport
from clm.channels.wechat import transport as wechat
from clm.channels.wechat.transport import WeChatTransport

APP_ID, APP_SECRET = "wx1234567890abcdef", "wechat-test-secret-Pq3"
ANSWERS = {
    "o-unfollowed-01": 43004,
    "o-refused-0001": 43101,
    "o-quota-00001": 45009,
    "o-rate-000001": 45047,
    "o-invalid-0001": 40003,
}


class FakeWeChat(BaseHTTPRequestHandler):
    tokens_issued: ClassVar[list[tuple[str, bool]]] = []  # (token, force_refresh)
    valid_token: ClassVar[str | None] = None
    expired: ClassVar[bool] = False
    messages: ClassVar[list[dict[str, Any]]] = []
    subscribe_messages: ClassVar[list[dict[str, Any]]] = []  # bizsend (订阅通知)
    last_msgid: ClassVar[int] = 200228331

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if url.path == "/cgi-bin/stable_token":
            if body.get("grant_type") != "client_credential" or body.get("appid") != APP_ID:
                return self._answer({"errcode": 40013, "errmsg": "invalid appid"})
            if body.get("secret") != APP_SECRET:
                return self._answer({"errcode": 40125, "errmsg": "invalid appsecret"})
            cls = FakeWeChat
            if cls.valid_token is None or body.get("force_refresh") or cls.expired:
                cls.valid_token, cls.expired = f"TOKEN-{len(cls.tokens_issued) + 1}", False
            cls.tokens_issued.append((cls.valid_token, bool(body.get("force_refresh"))))
            return self._answer({"access_token": cls.valid_token, "expires_in": 7200})
        if url.path in ("/cgi-bin/message/template/send", "/cgi-bin/message/subscribe/bizsend"):
            token = parse_qs(url.query).get("access_token", [""])[0]
            if token != FakeWeChat.valid_token:
                return self._answer(
                    {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
                )
            if FakeWeChat.expired:
                return self._answer({"errcode": 42001, "errmsg": "access_token expired"})
            subscribe = url.path.endswith("/bizsend")
            (FakeWeChat.subscribe_messages if subscribe else FakeWeChat.messages).append(body)
            code = ANSWERS.get(body["touser"], 0)
            too_long = [k for k, v in body["data"].items() if k.startswith("thing") and len(v["value"]) > 20]
            if subscribe and too_long:  # a thing value is at most 20 characters
                code = 47003
            FakeWeChat.last_msgid += 1
            return self._answer(
                {"errcode": code, "errmsg": "ok" if code == 0 else "refused", "msgid": FakeWeChat.last_msgid}
            )
        self.send_response(404)
        self.end_headers()

    def _answer(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def fake_wechat(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    FakeWeChat.tokens_issued, FakeWeChat.valid_token, FakeWeChat.expired, FakeWeChat.messages = (
        [],
        None,
        False,
        [],
    )
    FakeWeChat.subscribe_messages, FakeWeChat.last_msgid = [], 200228331
    wechat._tokens.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeWeChat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    for name, value in (
        ("CLM_WECHAT_APP_ID", APP_ID),
        ("CLM_WECHAT_APP_SECRET", APP_SECRET),
        ("CLM_WECHAT_API_URL", url),
    ):
        monkeypatch.setenv(name, value)
    yield url
    server.shutdown()
    server.server_close()
    wechat._tokens.clear()


TEXT = (
    "template: ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY\n"
    "first: 张伟，您的订单已发货\nkeyword1: 蓝牙耳机\nurl: https://shop.example.cn/o/1"
)


def _to(open_id: str, key: str = "k-1") -> OutboundMessage:
    return OutboundMessage(key, "wechat", f"{APP_ID}:{open_id}", "", TEXT)


def test_template_messages_share_one_cached_token_and_map_the_fields(fake_wechat):
    sender = transport("wechat")
    assert isinstance(sender, WeChatTransport)
    assert sender.send(_to("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "k-1")).ok
    assert WeChatTransport.from_settings().send(_to("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "k-2")).ok
    assert FakeWeChat.tokens_issued == [("TOKEN-1", False)]  # the second transport reused the token
    assert FakeWeChat.messages[0] == {
        "touser": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        "template_id": "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY",
        "data": {"first": {"value": "张伟，您的订单已发货"}, "keyword1": {"value": "蓝牙耳机"}},
        "client_msg_id": "k-1",
        "url": "https://shop.example.cn/o/1",
    }
    sender.close()


def test_an_expired_token_is_refreshed_once_and_the_message_sent(fake_wechat):
    sender = transport("wechat")
    assert sender.send(_to("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")).ok
    FakeWeChat.expired = True  # WeChat says 42001 to the cached token
    result = sender.send(_to("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "k-2"))
    assert result.ok, result.detail
    assert FakeWeChat.tokens_issued == [("TOKEN-1", False), ("TOKEN-2", True)]
    assert len(FakeWeChat.messages) == 2


def test_wechat_error_codes_become_outcomes(fake_wechat):
    sender = transport("wechat")
    unfollowed = sender.send(_to("o-unfollowed-01"))
    refused = sender.send(_to("o-refused-0001"))
    quota = sender.send(_to("o-quota-00001"))
    rate = sender.send(_to("o-rate-000001"))
    invalid = sender.send(_to("o-invalid-0001"))
    assert unfollowed.permanent and unfollowed.withdrawn and "43004" in unfollowed.detail
    assert refused.permanent and refused.withdrawn and not refused.bounce
    assert "consent withdrawn" in refused.detail
    assert not quota.ok and not quota.permanent and "45009" in quota.detail
    assert not rate.ok and not rate.permanent and "45047" in rate.detail
    assert invalid.permanent and invalid.bounce and not invalid.withdrawn and "40003" in invalid.detail
    other_app = sender.send(
        OutboundMessage("k", "wechat", "wxfedcba0987654321:oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "", TEXT)
    )
    assert other_app.permanent and "belongs to app wxfedcba0987654321" in other_app.detail


def test_a_wrong_secret_gets_no_token_and_never_shows(fake_wechat):
    wrong = WeChatTransport(APP_ID, "not-the-secret", fake_wechat)
    result = wrong.send(_to("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"))
    assert not result.ok and "40125" in result.detail
    assert FakeWeChat.messages == [] and "not-the-secret" not in result.detail + repr(wrong)
    assert APP_SECRET not in repr(transport("wechat"))
