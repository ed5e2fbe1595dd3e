"""A journey reaches Chinese customers where they are: a preference list (WeChat if we have an
OpenID and consent, else SMS through Alibaba or Tencent Cloud, else email) and a WeCom follow-up
(回访), against the local fakes of each provider, with consent, the frequency cap over all channels
and quiet hours respected, failures mapped (43101 withdraws WeChat consent and falls back to SMS;
84061 withdraws WeCom consent), the trace saying which channel was used and why, and the SMS
providers' delivery receipts coming back as outcomes and events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from clm.channels.templates import save_template, template_from_dict
from clm.core.errors import InvalidInput
from clm.customers.schemas import CustomerIn
from clm.customers.service import get_customer, set_consent, upsert_customer
from clm.events.tables import events
from clm.journeys.definition import definition_from_dict
from clm.journeys.outbox import dispatch, queue_message
from clm.journeys.service import save_definition, set_status, tick, trace
from clm.journeys.tables import journey_log, outbox
from tests.journeys.test_china_sms import FakeAliyun, FakeTencent, aliyun, tencent  # noqa: F401
from tests.journeys.test_wechat_transport import APP_ID, FakeWeChat, fake_wechat  # noqa: F401
from tests.journeys.test_wecom_transport import FakeWeCom, fake_wecom  # noqa: F401

NOW = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)  # 12:00 in Beijing, 23:00 in New York
TEMPLATES = [
    {
        "name": "shipped-wx",
        "channel": "wechat",
        "description": "微信模板「订单发货通知」：first、keyword1（订单号）、keyword2（商品）、url",
        "text": {
            "zh": "template: TPL-ORDER-SHIPPED\n"
            "first: {{ customer.last_name }}{{ customer.first_name }}，您的订单已发货\n"
            "keyword1: {{ event.order_id }}\nkeyword2: {{ event.product }}\n"
            "url: https://shop.example.cn/o/{{ event.order_id }}"
        },
    },
    {
        "name": "shipped-sms",
        "channel": "sms",
        "text": {
            "zh": "template: SMS_154950909\nname: {{ customer.last_name }}{{ customer.first_name }}\n"
            "order: {{ event.order_id }}"
        },
    },
    {
        "name": "shipped-mail",
        "channel": "email",
        "subject": {"zh": "您的订单 {{ event.order_id }} 已发货"},
        "text": {
            "zh": "{{ customer.last_name }}{{ customer.first_name }}，您好：您的{{ event.product }}已发货。"
        },
    },
    {
        "name": "followup-wecom",
        "channel": "wecom",
        "text": {
            "zh": "{{ customer.last_name }}{{ customer.first_name }}您好，我是您的专属顾问，"
            "想了解一下{{ event.product }}用得怎么样？"
        },
    },
]
JOURNEY = {
    "name": "order-shipped",
    "title": "订单发货通知与回访",
    "trigger": {"event": "order_shipped"},
    "steps": [
        {
            "id": "notify",
            "send": {
                "channels": ["wechat", "sms", "email"],
                "template": {"wechat": "shipped-wx", "sms": "shipped-sms", "email": "shipped-mail"},
            },
        },
        {"wait": {"days": 1}},
        {"id": "follow-up", "send": {"channel": "wecom", "template": "followup-wecom", "sender": "zhangsan"}},
    ],
}


def _customer(engine, key: str, name: str, *, consents: dict[str, bool], **identities) -> int:
    profile = CustomerIn(external_id=key, last_name=name[0], first_name=name[1:], country="CN", **identities)
    cid = upsert_customer(engine, profile, actor="test")[0].id
    for channel, granted in consents.items():
        set_consent(engine, cid, channel, granted, source="会员注册")
    return cid


def _shipped(engine, who: str, at: datetime) -> None:
    from clm.events.schemas import validate_event
    from clm.events.service import ingest

    raw = {"event_id": f"ship-{who}", "type": "order_shipped", "external_id": who, "timestamp": at,
           "order_id": f"SO-{who}", "product": "蓝牙耳机"}  # fmt: skip
    ingest(engine, [validate_event(raw)], actor="test")


def _log(engine, cid: int, action: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        q = select(journey_log.c.outcome, journey_log.c.detail).where(
            journey_log.c.customer_id == cid, journey_log.c.action == action
        )
        return [tuple(r) for r in conn.execute(q.order_by(journey_log.c.id))]


def _messages(engine, cid: int) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        q = select(outbox.c.channel, outbox.c.status, outbox.c.reason).where(outbox.c.customer_id == cid)
        return [tuple(r) for r in conn.execute(q.order_by(outbox.c.id))]


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_a_journey_reaches_each_customer_on_the_first_channel_it_may(
    engine, smtp, provider, request, monkeypatch
):
    for fake in ("fake_wechat", "fake_wecom", provider):
        request.getfixturevalue(fake)
    monkeypatch.setenv("CLM_QUIET_HOURS", "21:00-08:00")
    monkeypatch.setenv("CLM_FREQUENCY_CAP", "total=2/7d")
    for t in TEMPLATES:
        save_template(engine, template_from_dict(t))
    everything = {"wechat": True, "sms": True, "email": True, "wecom": True}
    wang = _customer(
        engine,
        "wang",
        "王芳",
        consents=everything,
        wechat_openid=f"{APP_ID}:oWangFang0001",
        phone="13800000011",
        email="wang@example.cn",
        wecom_external_userid="wmWangFang000001",
    )
    li = _customer(
        engine,
        "li",
        "李雷",
        consents=everything,
        phone="13800000012",
        email="li@example.cn",
        wecom_external_userid="wm-deleted-00001",
    )  # no OpenID: SMS
    zhao = _customer(
        engine,
        "zhao",
        "赵敏",
        consents={**everything, "sms": False},
        phone="13800000013",
        email="zhao@example.cn",
    )  # SMS consent withdrawn: email
    sun = _customer(
        engine,
        "sun",
        "孙悦",
        consents=everything,
        wechat_openid=f"{APP_ID}:o-refused-0001",
        phone="13800000014",
    )  # refuses WeChat messages (43101): SMS after all
    zhou = _customer(
        engine,
        "zhou",
        "周杰",
        consents={},
        wechat_openid=f"{APP_ID}:oZhouJie00001",
        phone="13800000015",
        email="zhou@example.cn",
    )  # no consent anywhere
    other_app = _customer(
        engine,
        "wu",
        "吴彤",
        consents=everything,
        email="wu@example.cn",
        wechat_openid="wxfedcba0987654321:oWuTong00001",
    )  # an OpenID of another app
    ny = _customer(
        engine,
        "qin",
        "秦岚",
        consents=everything,
        email="qin@example.cn",
        wechat_openid=f"{APP_ID}:oQinLan000001",
        timezone="America/New_York",
    )  # 23:00 there
    capped = _customer(engine, "qian", "钱进", consents=everything, email="qian@example.cn",
                       wechat_openid=f"{APP_ID}:oQianJin00001", phone="13800000016")  # fmt: skip
    # qian had two marketing emails yesterday: the cap of two a week over all channels is used
    yesterday = NOW - timedelta(days=1)
    context = {"event": {"order_id": "SO-0", "product": "手机壳"}}
    for key in ("y1", "y2"):
        queue_message(
            engine, capped, "shipped-mail", key=key, kind="marketing", context=context, not_before=yesterday
        )
    assert dispatch(engine, yesterday).sent == 2

    save_definition(engine, JOURNEY)
    set_status(engine, "order-shipped", "live")
    people = ("wang", "li", "zhao", "sun", "zhou", "wu", "qin", "qian")
    for who in people:
        _shipped(engine, who, NOW - timedelta(minutes=5))
    tick(engine, NOW)
    tick(engine, NOW + timedelta(minutes=1))  # sun's WeChat refusal fell back to SMS: sent now

    assert _messages(engine, wang)[0][:2] == ("wechat", "sent")
    assert _log(engine, wang, "channel") == [("via wechat", "wechat")]
    assert _messages(engine, li)[0][:2] == ("sms", "sent")
    assert _log(engine, li, "channel") == [
        ("via sms", f"wechat skipped: no OpenID for the Official Account {APP_ID} on the profile → sms")
    ]
    assert _messages(engine, zhao)[0][:2] == ("email", "sent")
    assert _log(engine, zhao, "channel")[0][1] == (
        f"wechat skipped: no OpenID for the Official Account {APP_ID} on the profile;"
        " sms skipped: no sms marketing consent → email"
    )
    assert smtp.to("zhao@example.cn")[0]["Subject"] == "您的订单 SO-zhao 已发货"
    # sun: WeChat said 43101, so the WeChat consent is withdrawn and the message went by SMS
    assert _messages(engine, sun)[0][:2] == ("sms", "sent")
    assert [o for o, _ in _log(engine, sun, "channel")] == ["via wechat", "wechat failed", "via sms"]
    consent = {c.channel: c.granted for c in get_customer(engine, sun).consents}
    assert consent["wechat"] is False and consent["sms"] is True
    source = next(c.source for c in get_customer(engine, sun).consents if c.channel == "wechat")
    assert source.startswith("wechat: WeChat errcode 43101")
    status, reason = _messages(engine, zhou)[0][1:]
    assert status == "skipped" and reason == (
        "wechat skipped: no wechat marketing consent; sms skipped: no sms marketing consent;"
        " email skipped: no email marketing consent"
    )
    assert _messages(engine, other_app)[0][:2] == ("email", "sent")  # another app's OpenID is no address
    assert _messages(engine, ny)[0][1:] == ("queued", "quiet hours in the customer's time zone")
    status, reason = _messages(engine, capped)[2][1:]
    assert status == "skipped" and reason == (
        "wechat skipped: frequency cap: 2 messages on all channels in 7 days (limit 2);"
        " sms skipped: frequency cap: 2 messages on all channels in 7 days (limit 2);"
        " email skipped: frequency cap: 2 messages on all channels in 7 days (limit 2)"
    )

    wechat_sent = {m["touser"]: m for m in FakeWeChat.messages}
    assert wechat_sent["oWangFang0001"]["template_id"] == "TPL-ORDER-SHIPPED"
    assert wechat_sent["oWangFang0001"]["data"]["first"] == {"value": "王芳，您的订单已发货"}
    assert wechat_sent["oWangFang0001"]["url"] == "https://shop.example.cn/o/SO-wang"
    sms_sent = FakeAliyun.received if provider == "aliyun" else FakeTencent.received
    assert len(sms_sent) == 2  # li, and sun after WeChat refused

    # a day later the follow-up (回访) goes to WeCom: wang's becomes a task for zhangsan; li deleted
    # the staff member (84061), so li's WeCom consent is withdrawn
    tick(engine, NOW + timedelta(days=1, minutes=2))
    assert FakeWeCom.tasks == [
        {
            "chat_type": "single",
            "external_userid": ["wmWangFang000001"],
            "sender": "zhangsan",
            "text": {"content": "王芳您好，我是您的专属顾问，想了解一下蓝牙耳机用得怎么样？"},
        }
    ]
    assert _messages(engine, wang)[1][:2] == ("wecom", "sent")
    assert _messages(engine, li)[1][:2] == ("wecom", "failed")
    assert {c.channel: c.granted for c in get_customer(engine, li).consents}["wecom"] is False
    assert _messages(engine, zhao)[1][1:] == ("skipped", "no WeCom external_userid on the profile")

    steps = trace(engine, li, "order-shipped").steps
    assert [(s.action, s.outcome) for s in steps if s.step == "notify"] == [
        ("send", "queued"),
        ("channel", "via sms"),
    ]
    for secret in ("wechat-test-secret", "wecom-test-secret", "ali-test-secret", "tencent-test-secret"):
        with engine.connect() as conn:
            reasons = " ".join(r or "" for r in conn.execute(select(outbox.c.reason)).scalars())
        assert secret not in reasons


def test_a_preference_list_is_checked_when_the_journey_is_saved():
    base = {"name": "j", "trigger": {"event": "signup"}}
    ok = definition_from_dict(
        {**base, "steps": [{"send": {"channels": ["wechat", "email"],
                                     "template": {"wechat": "a-wx", "email": "a-mail"}}}]}
    )  # fmt: skip
    assert ok.steps[0].args == {
        "channel": "wechat",
        "template": "a-wx",
        "class": "marketing",
        "channels": ["wechat", "email"],
        "templates": {"wechat": "a-wx", "email": "a-mail"},
    }
    for send, message in (
        ({"channels": ["wechat", "sms"], "template": "one"}, "one template per channel"),
        (
            {"channels": ["wechat", "sms"], "template": {"wechat": "a"}},
            "one template for each of wechat, sms",
        ),
        ({"channels": ["wechat", "fax"], "template": {"wechat": "a"}}, "one of email, sms, webhook"),
        ({"channel": "sms", "channels": ["sms"], "template": "a"}, "not both"),
        ({"channel": "sms", "template": "a", "colour": "red"}, "unknown key"),
        ({"channels": ["sms", "sms"], "template": {"sms": "a"}}, "names a channel twice"),
    ):
        with pytest.raises(InvalidInput, match=message):
            definition_from_dict({**base, "steps": [{"send": send}]})


def test_a_wechat_template_must_name_the_wechat_template_id():
    with pytest.raises(InvalidInput, match="starts with 'template: ID'"):
        template_from_dict({"name": "x", "channel": "wechat", "text": {"zh": "您的订单已发货"}})


def _aliyun_report(phone, at, success, code, text, biz_id, out_id):  # type: ignore[no-untyped-def]
    """One report of Alibaba Cloud's SmsReport push, as documented."""
    sent = "2026-11-02 12:00:01"
    return {"phone_number": phone, "send_time": sent, "report_time": at, "success": success, "err_code": code,
            "err_msg": text, "sms_size": "1", "biz_id": biz_id, "out_id": out_id}  # fmt: skip


def _tencent_report(mobile, at, status, code, text, sid):  # type: ignore[no-untyped-def]
    """One report of Tencent Cloud's 短信下发状态通知, as documented."""
    return {"user_receive_time": at, "nationcode": "86", "mobile": mobile, "report_status": status,
            "errmsg": code, "description": text, "sid": sid}  # fmt: skip


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_sms_delivery_receipts_become_outcomes_and_events(engine, client, provider, request, monkeypatch):
    request.getfixturevalue(provider)
    monkeypatch.setenv("CLM_QUIET_HOURS", "off")
    monkeypatch.setenv("CLM_FREQUENCY_CAP", "off")
    monkeypatch.setenv("CLM_SMS_RECEIPT_TOKEN", "receipt-secret-9f")
    save_template(engine, template_from_dict(TEMPLATES[1]))
    ids = []
    for n, who in enumerate(("wang", "li")):
        cid = _customer(engine, who, "王芳", consents={"sms": True}, phone=f"1380000000{n + 5}")
        queue_message(engine, cid, "shipped-sms", key=f"k-{who}", channel="sms", kind="marketing",
                      context={"event": {"order_id": "SO-1"}}, not_before=NOW)  # fmt: skip
        ids.append(cid)
    assert dispatch(engine, NOW).sent == 2
    with engine.connect() as conn:
        refs = dict(conn.execute(select(outbox.c.key, outbox.c.provider_ref)).all())
    assert all(refs.values())
    if provider == "aliyun":
        reports = [
            _aliyun_report(
                "13800000005",
                "2026-11-02 12:00:09",
                True,
                "DELIVERED",
                "用户接收成功",
                refs["k-wang"],
                "k-wang",
            ),
            _aliyun_report(
                "13800000006", "2026-11-02 12:00:30", False, "MK:0001", "停机", refs["k-li"], "k-li"
            ),
            _aliyun_report("13900000000", "2026-11-02 12:00:30", True, "DELIVERED", "", "x", "x"),
        ]
        answer = {"code": 0, "msg": "接收成功", "matched": 2, "unknown": 1}
    else:
        reports = [
            _tencent_report(
                "13800000005", "2026-11-02 12:00:09", "SUCCESS", "DELIVRD", "用户短信送达成功", refs["k-wang"]
            ),
            _tencent_report("13800000006", "2026-11-02 12:00:30", "FAIL", "MK:0001", "停机", refs["k-li"]),
            _tencent_report("13900000000", "2026-11-02 12:00:30", "SUCCESS", "DELIVRD", "", "nope"),
        ]
        answer = {"result": 0, "errmsg": "OK", "matched": 2, "unknown": 1}
    url = f"/hooks/sms/{provider}"
    assert client.post(url, json=reports).status_code == 401
    assert client.post(f"{url}?token=wrong", json=reports).status_code == 401
    assert client.post(f"{url}?token=receipt-secret-9f", json={"not": "a list"}).status_code == 422
    for _ in range(2):  # a provider may push the same receipts twice: recorded once
        response = client.post(f"{url}?token=receipt-secret-9f", json=reports)
        assert response.status_code == 200 and response.json() == answer
    with engine.connect() as conn:
        rows = {r.key: r for r in conn.execute(select(outbox))}
        q = select(events.c.customer_id, events.c.type, events.c.occurred_at)
        got = sorted(tuple(r) for r in conn.execute(q.where(events.c.type.like("sms_%"))))
    assert (rows["k-wang"].status, rows["k-wang"].delivery) == ("sent", "delivered")
    assert rows["k-wang"].delivered_at == datetime(2026, 11, 2, 4, 0, 9, tzinfo=UTC)  # Beijing time
    assert (rows["k-li"].status, rows["k-li"].delivery) == ("failed", "undelivered")
    assert rows["k-li"].reason == f"not delivered ({provider} receipt): MK:0001 停机"
    assert got == [
        (ids[0], "sms_delivered", datetime(2026, 11, 2, 4, 0, 9, tzinfo=UTC)),
        (ids[1], "sms_undelivered", datetime(2026, 11, 2, 4, 0, 30, tzinfo=UTC)),
    ]
    monkeypatch.delenv("CLM_SMS_RECEIPT_TOKEN")
    assert client.post(f"{url}?token=receipt-secret-9f", json=reports).status_code == 403
