"""WeChat Official Account subscribe messages (订阅通知, bizsend) against the local fake, and what
WeChat pushes to the account's server URL: the GET check with echostr, and signed XML pushes
(signature = SHA-1 of the sorted Token, timestamp and nonce) of TEMPLATESENDJOBFINISH and
subscribe_msg_sent_event results, which become delivered/failed outcomes and events, a
"failed:user block" and an unfollow withdrawing the WeChat consent."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from clm.channels.base import OutboundMessage, transport
from clm.channels.templates import save_template, template_from_dict
from clm.core.errors import InvalidInput
from clm.customers.service import get_customer
from clm.events.tables import events
from clm.journeys.outbox import dispatch, queue_message
from clm.journeys.tables import outbox
from tests.journeys.test_china_journeys import _customer
from tests.journeys.test_wechat_transport import APP_ID, FakeWeChat, fake_wechat  # noqa: F401

TOKEN = "wx-push-token-7Hq"
XML = {"Content-Type": "text/xml"}  # as WeChat sends it
NOW = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)
# WeChat's CreateTime of the pushes: after the consents the test gives (at the real clock's now),
# as a real push comes after the consent it may withdraw (an older one is history, not news)
PUSHED = int(time.time()) + 3600
SUBSCRIBE = (
    "subscribe: SUB-DELIVERY-NOTICE\nthing1: 蓝牙耳机\ntime2: 2026-11-02 12:00\n"
    "url: https://shop.example.cn/o/1\nminiprogram_appid: wx0000000000000001\n"
    "miniprogram_pagepath: pages/order?id=1"
)


def _to(open_id: str, text: str = SUBSCRIBE, key: str = "k-1") -> OutboundMessage:
    return OutboundMessage(key, "wechat", f"{APP_ID}:{open_id}", "", text)


def test_subscribe_messages_go_to_bizsend_with_their_fields_and_codes(request):
    request.getfixturevalue("fake_wechat")
    sender = transport("wechat")
    result = sender.send(_to("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"))
    assert result.ok and result.ref == "200228332"
    assert FakeWeChat.messages == []  # not a template message
    assert FakeWeChat.subscribe_messages == [
        {
            "touser": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
            "template_id": "SUB-DELIVERY-NOTICE",
            "data": {"thing1": {"value": "蓝牙耳机"}, "time2": {"value": "2026-11-02 12:00"}},
            "page": "https://shop.example.cn/o/1",
            "miniprogram": {"appid": "wx0000000000000001", "pagepath": "pages/order?id=1"},
        }
    ]
    refused = sender.send(_to("o-refused-0001"))  # 43101: the person has not accepted the template
    assert refused.permanent and refused.withdrawn and "43101" in refused.detail
    quota = sender.send(_to("o-quota-00001"))
    assert not quota.ok and not quota.permanent
    too_long = sender.send(_to("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", SUBSCRIBE.replace("蓝牙耳机", "很长" * 11)))
    assert too_long.permanent and not too_long.withdrawn and "47003" in too_long.detail
    FakeWeChat.expired = True  # 42001: the token is fetched again and the message sent once more
    assert sender.send(_to("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", key="k-2")).ok
    assert [force for _, force in FakeWeChat.tokens_issued] == [False, True]
    sender.close()


def test_a_wechat_template_may_be_a_subscribe_message():
    t = template_from_dict({"name": "sub-wx", "channel": "wechat", "text": {"zh": SUBSCRIBE}})
    assert t.text["zh"].startswith("subscribe:")
    with pytest.raises(InvalidInput, match="'subscribe: ID'"):
        template_from_dict({"name": "x", "channel": "wechat", "text": {"zh": "您的订单已发货"}})


def _signed(timestamp: str = "1793592000", nonce: str = "48613", token: str = TOKEN) -> str:
    signature = hashlib.sha1("".join(sorted((token, timestamp, nonce))).encode()).hexdigest()
    return f"signature={signature}&timestamp={timestamp}&nonce={nonce}"


def test_the_server_url_check_answers_echostr_only_when_signed_with_the_token(client, monkeypatch):
    # the hand-computed case: sorted("token", "1409735669", "nonce") → "1409735669noncetoken"
    assert _signed("1409735669", "nonce", "token").startswith(
        "signature=" + hashlib.sha1(b"1409735669noncetoken").hexdigest()
    )
    assert client.get(f"/hooks/wechat?{_signed()}&echostr=5837397520").status_code == 403  # unset
    monkeypatch.setenv("CLM_WECHAT_TOKEN", TOKEN)
    answer = client.get(f"/hooks/wechat?{_signed()}&echostr=5837397520")
    assert answer.status_code == 200 and answer.text == "5837397520"
    wrong = client.get(f"/hooks/wechat?{_signed(token='other')}&echostr=5837397520")
    assert wrong.status_code == 401 and TOKEN not in wrong.text
    assert client.get("/hooks/wechat?echostr=1").status_code == 401
    assert client.post(f"/hooks/wechat?{_signed(token='other')}", content=b"<xml/>").status_code == 401


def _event(open_id: str, body: str, at: int = PUSHED) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>"
        f"<FromUserName><![CDATA[{open_id}]]></FromUserName><CreateTime>{at}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType>{body}</xml>"
    ).encode()


def _job_finished(open_id: str, msg_id: str, status: str) -> bytes:
    return _event(
        open_id,
        f"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{msg_id}</MsgID>"
        f"<Status><![CDATA[{status}]]></Status>",
    )


def _subscribe_sent(open_id: str, msg_id: str, code: str, status: str) -> bytes:
    return _event(
        open_id,
        "<Event><![CDATA[subscribe_msg_sent_event]]></Event><SubscribeMsgSentEvent><List>"
        f"<TemplateId><![CDATA[SUB-DELIVERY-NOTICE]]></TemplateId><MsgID>{msg_id}</MsgID>"
        f"<ErrorCode>{code}</ErrorCode><ErrorStatus><![CDATA[{status}]]></ErrorStatus>"
        "</List></SubscribeMsgSentEvent>",
    )


def test_wechat_delivery_results_become_outcomes_events_and_consent(engine, client, request, monkeypatch):
    request.getfixturevalue("fake_wechat")
    monkeypatch.setenv("CLM_WECHAT_TOKEN", TOKEN)
    monkeypatch.setenv("CLM_QUIET_HOURS", "off")
    monkeypatch.setenv("CLM_FREQUENCY_CAP", "off")
    shipped = "template: TPL-ORDER-SHIPPED\nfirst: {{ customer.last_name }}{{ customer.first_name }}，已发货"
    for name, text in (("shipped-wx", shipped), ("sub-wx", SUBSCRIBE)):
        save_template(engine, template_from_dict({"name": name, "channel": "wechat", "text": {"zh": text}}))
    people = {}
    for who, name, template in (("wang", "王芳", "shipped-wx"), ("li", "李雷", "shipped-wx"),
                                ("zhao", "赵敏", "sub-wx"), ("sun", "孙悦", "sub-wx")):  # fmt: skip
        cid = _customer(engine, who, name, consents={"wechat": True, "sms": True},
                        wechat_openid=f"{APP_ID}:o{who.title()}000001")  # fmt: skip
        queue_message(engine, cid, template, key=f"k-{who}", channel="wechat", kind="marketing",
                      context={}, not_before=NOW)  # fmt: skip
        people[who] = cid
    assert dispatch(engine, NOW).sent == 4
    with engine.connect() as conn:
        ref = dict(conn.execute(select(outbox.c.key, outbox.c.provider_ref)).all())
    assert sorted(ref.values()) == ["200228332", "200228333", "200228334", "200228335"]

    pushes = [
        _job_finished("oWang000001", ref["k-wang"], "success"),
        _job_finished("oLi000001", ref["k-li"], "failed:user block"),
        _subscribe_sent("oZhao000001", ref["k-zhao"], "0", "success"),
        _subscribe_sent("oSun000001", ref["k-sun"], "20001", "failed:system failed"),
        _job_finished("oNobody00001", "999", "success"),  # no message of ours: answered, ignored
    ]
    for _ in range(2):  # WeChat pushes again when unsure it was heard: written once
        for body in pushes:
            answer = client.post(f"/hooks/wechat?{_signed()}&openid=x", content=body, headers=XML)
            assert answer.status_code == 200 and answer.text == "success"
    with engine.connect() as conn:
        rows = {r.key: r for r in conn.execute(select(outbox))}
        q = select(events.c.customer_id, events.c.type, events.c.occurred_at, events.c.channel)
        got = sorted(tuple(r) for r in conn.execute(q.where(events.c.type.like("wechat_%"))))
    at = datetime.fromtimestamp(PUSHED, UTC)  # CreateTime
    wang = rows["k-wang"]
    assert (wang.status, wang.delivery, wang.delivered_at) == ("sent", "delivered", at)
    assert (rows["k-li"].status, rows["k-li"].delivery) == ("failed", "undelivered")
    assert rows["k-li"].reason == "not delivered (wechat receipt): failed:user block"
    assert (rows["k-zhao"].status, rows["k-zhao"].delivery) == ("sent", "delivered")
    assert (rows["k-sun"].status, rows["k-sun"].reason) == (
        "failed",
        "not delivered (wechat receipt): 20001 failed:system failed",
    )
    assert got == sorted(
        [
            (people["wang"], "wechat_delivered", at, "wechat"),
            (people["li"], "wechat_undelivered", at, "wechat"),
            (people["zhao"], "wechat_delivered", at, "wechat"),
            (people["sun"], "wechat_undelivered", at, "wechat"),
        ]
    )

    def consents(who: str) -> dict[str, tuple[bool, str]]:
        return {c.channel: (c.granted, c.source) for c in get_customer(engine, people[who]).consents}

    # li blocked the account: WeChat consent withdrawn, SMS untouched; a system failure withdraws nothing
    assert consents("li")["wechat"] == (False, "wechat: wechat failed:user block")
    assert consents("li")["sms"][0] is True
    assert consents("sun")["wechat"][0] is True and consents("wang")["wechat"][0] is True

    # zhao unfollows the account; wang turns the notification off in WeChat's settings
    unfollow = _event("oZhao000001", "<Event><![CDATA[unsubscribe]]></Event>", at=PUSHED + 60)
    assert client.post(f"/hooks/wechat?{_signed()}", content=unfollow).text == "success"
    change = _event(
        "oWang000001",
        "<Event><![CDATA[subscribe_msg_change_event]]></Event><SubscribeMsgChangeEvent><List>"
        "<TemplateId><![CDATA[SUB-DELIVERY-NOTICE]]></TemplateId>"
        "<SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString></List></SubscribeMsgChangeEvent>",
    )
    assert client.post(f"/hooks/wechat?{_signed()}", content=change).text == "success"
    assert consents("zhao")["wechat"] == (False, "wechat: unfollowed the account")
    assert consents("wang")["wechat"] == (False, "wechat: turned off notification SUB-DELIVERY-NOTICE")

    # what is not a plain WeChat message is refused with a clear error, nothing recorded
    for body, words in (
        (b'<!DOCTYPE x [<!ENTITY a "b">]><xml>&a;</xml>', "no DOCTYPE"),
        (b"<xml><Encrypt><![CDATA[abc]]></Encrypt></xml>", "明文模式"),
        (b"not xml", "one XML message"),
    ):
        answer = client.post(f"/hooks/wechat?{_signed()}", content=body, headers=XML)
        assert answer.status_code in (400, 422) and words in answer.text
    as_form = {"Content-Type": "application/x-www-form-urlencoded"}  # curl's default, not WeChat's
    answer = client.post(f"/hooks/wechat?{_signed()}", content=unfollow, headers=as_form)
    assert answer.status_code in (400, 422) and "not a form" in answer.text
    with engine.connect() as conn:
        reasons = " ".join(r or "" for r in conn.execute(select(outbox.c.reason)).scalars())
    assert TOKEN not in reasons and "wechat-test-secret" not in reasons
