"""WeChat identities: an OpenID belongs to the app that issued it (appid:openid), a UnionID to
the person across one Open Platform account's apps; both match and merge like email and phone."""

import pytest
from sqlalchemy import select

from clm.core.errors import InvalidInput
from clm.core.files import DataFile
from clm.customers.identities import normalize_identity
from clm.customers.importer import import_customers
from clm.customers.schemas import CustomerIn
from clm.customers.service import find_customers, get_customer, upsert_customer
from clm.customers.tables import customer_merges
from clm.events.importer import import_events

OA = "wx1234567890abcdef"  # an Official Account
MP = "wxfedcba0987654321"  # a Mini Program of the same Open Platform account
OPENID_OA = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
OPENID_MP = "o6_bmasdasdsad6_2sgVt7hMZOPfL"
UNIONID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"


def test_an_openid_keeps_its_app_id_and_its_case():
    assert normalize_identity("wechat_openid", f"  {OA} : {OPENID_OA} ") == f"{OA}:{OPENID_OA}"
    assert normalize_identity("wechat_unionid", f" {UNIONID}\t") == UNIONID


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        ("wechat_openid", OPENID_OA, "has no app id: write it as appid:openid"),
        ("wechat_openid", f"wx123:{OPENID_OA}", "'wx123' is not a WeChat app id"),
        ("wechat_openid", f"{OA}:", "'' is not a WeChat OpenID"),
        ("wechat_openid", f"{OA}:o pen id", "'o pen id' is not a WeChat OpenID"),
        ("wechat_unionid", "张三的微信", "'张三的微信' is not a WeChat UnionID"),
        ("wechat_unionid", "short", "'short' is not a WeChat UnionID"),
    ],
)
def test_bad_wechat_ids_are_refused_with_the_reason(kind, value, reason):
    with pytest.raises(InvalidInput) as caught:
        normalize_identity(kind, value)
    assert caught.value.field == kind and reason in caught.value.reason


def test_the_same_openid_under_two_app_ids_is_two_people(engine):
    a, _ = upsert_customer(engine, CustomerIn(wechat_openid=f"{OA}:{OPENID_OA}"), actor="t")
    b, created = upsert_customer(engine, CustomerIn(wechat_openid=f"{MP}:{OPENID_OA}"), actor="t")
    assert created and a.id != b.id
    again, created = upsert_customer(
        engine, CustomerIn(wechat_openid=f"{OA}:{OPENID_OA}", first_name="伟"), actor="t"
    )
    assert not created and again.id == a.id
    assert [c.id for c in find_customers(engine, {"wechat_openid": f"{MP}:{OPENID_OA}"})] == [b.id]


def test_records_sharing_a_unionid_merge_two_profiles(engine, write_file):
    """The shop knows a follower of its Official Account (by phone) and a Mini Program buyer (by
    email); a file that gives each OpenID with the same UnionID shows they are one person."""
    follower, _ = upsert_customer(
        engine, CustomerIn(phone="13812345678", wechat_openid=f"{OA}:{OPENID_OA}"), actor="t"
    )
    buyer, _ = upsert_customer(
        engine, CustomerIn(email="wei@example.com", wechat_openid=f"{MP}:{OPENID_MP}"), actor="t"
    )
    assert follower.id != buyer.id
    path = write_file(
        "wechat.csv",
        "wechat_openid,wechat_unionid,first_name\n"
        f"{OA}:{OPENID_OA},{UNIONID},伟\n"
        f"{MP}:{OPENID_MP},{UNIONID},\n"
        f"{OPENID_OA},{UNIONID},\n",
    )
    report = import_customers(engine, DataFile(path))
    assert (report.accepted, report.rejected, report.counters["merges"]) == (2, 1, 1)
    assert report.rejections[0].line == 4 and "has no app id" in report.rejections[0].reason
    survivor = get_customer(engine, follower.id)  # the older profile survives
    assert {(i.kind, i.value) for i in survivor.identities} == {
        ("phone", "+8613812345678"),
        ("email", "wei@example.com"),
        ("wechat_openid", f"{OA}:{OPENID_OA}"),
        ("wechat_openid", f"{MP}:{OPENID_MP}"),
        ("wechat_unionid", UNIONID),
    }
    assert survivor.merged_from == [buyer.id]
    with engine.connect() as conn:
        merges = conn.execute(select(customer_merges.c.survivor_id, customer_merges.c.merged_id)).all()
    assert merges == [(follower.id, buyer.id)]
    # a later record known only by the UnionID finds the merged person
    found, created = upsert_customer(engine, CustomerIn(wechat_unionid=UNIONID, city="上海"), actor="t")
    assert not created and found.id == follower.id


def test_events_by_openid_through_the_api_and_a_file(engine, client, personas, write_file):
    h = personas.headers("mark")
    batch = {
        "events": [
            {"type": "page_view", "timestamp": "2026-11-01T10:05:00Z", "wechat_openid": f"{OA}:{OPENID_OA}"},
            {"type": "page_view", "timestamp": "2026-11-01T10:06:00Z", "wechat_openid": f"{MP}:{OPENID_OA}"},
        ]
    }
    response = client.post("/api/v1/events", json=batch, headers=h)
    assert response.status_code in (200, 201, 202), response.text
    by_app = client.get("/api/v1/customers", params={"wechat_openid": f"{OA}:{OPENID_OA}"}, headers=h).json()
    other = client.get("/api/v1/customers", params={"wechat_openid": f"{MP}:{OPENID_OA}"}, headers=h).json()
    assert len(by_app) == len(other) == 1 and by_app[0]["id"] != other[0]["id"]
    bad = {"type": "page_view", "timestamp": "2026-11-01T10:05:00Z", "wechat_openid": OPENID_OA}
    response = client.post("/api/v1/events", json={"events": [bad]}, headers=h)
    assert response.status_code == 422
    error = response.json()["error"]
    assert "has no app id" in str(error), error

    # a file: the UnionID column ties a new event to the person the API created
    upsert_customer(engine, CustomerIn(wechat_openid=f"{OA}:{OPENID_OA}", wechat_unionid=UNIONID), actor="t")
    path = write_file(
        "events.csv",
        "event_id,type,timestamp,wechat_unionid\n"
        "e1,purchase,2026-11-01T10:07:00Z,"
        f"{UNIONID}\n"
        "e2,purchase,2026-11-01T10:08:00Z,not a unionid\n",
    )
    report = import_events(engine, DataFile(path))
    assert (report.accepted, report.rejected) == (1, 1)
    assert "is not a WeChat UnionID" in report.rejections[0].reason
    assert [c.id for c in find_customers(engine, {"wechat_unionid": UNIONID})] == [by_app[0]["id"]]


def test_an_order_file_names_the_buyer_by_mini_program_openid(engine, write_file):
    from clm.commerce.importer import import_orders

    buyer, _ = upsert_customer(engine, CustomerIn(wechat_openid=f"{MP}:{OPENID_MP}"), actor="t")
    path = write_file(
        "orders.csv",
        "order_id,wechat_openid,ordered_at,status,total\n"
        f"WX-1,{MP}:{OPENID_MP},2026/11/1 10:05,已完成,￥1299.00\n"
        f"WX-2,{OPENID_MP},2026/11/1 10:06,已完成,￥9.90\n",
    )
    report = import_orders(engine, DataFile(path))
    assert (report.accepted, report.rejected) == (1, 1)
    assert "has no app id" in report.rejections[0].reason
    assert report.customer_ids == {buyer.id}
