"""Console downloads go through clm.core.exports: UTF-8 with a BOM by default, GB18030 on request,
times in the store's zone with the zone named, a bad encoding refused."""

import codecs

from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from tests.web.conftest import sign_in


def test_customers_and_overview_downloads_in_gb18030_and_utf8_bom(client, team, engine):
    upsert_customer(
        engine, CustomerIn(external_id="w1", first_name="伟", last_name="张", city="上海"), actor="t"
    )
    sign_in(client, "mark")
    default = client.get("/customers/export.csv")
    assert default.status_code == 200 and default.content.startswith(codecs.BOM_UTF8)
    header, row = default.content.decode("utf-8-sig").splitlines()[:2]
    assert header.endswith(",created_at (Asia/Shanghai)") and "张伟" in row and "上海" in row
    gbk = client.get("/customers/export.csv", params={"encoding": "gb18030"})
    assert gbk.headers["content-type"] == "text/csv; charset=gb18030"
    assert not gbk.content.startswith(codecs.BOM_UTF8) and "张伟".encode("gb18030") in gbk.content
    for part in ("kpi", "risk"):
        page = client.get("/overview.csv", params={"part": part, "encoding": "gbk"})
        assert page.status_code == 200 and page.headers["content-type"].endswith("gb18030")
        assert client.get("/overview.csv", params={"part": part}).content.startswith(codecs.BOM_UTF8)
    refused = client.get("/customers/export.csv", params={"encoding": "latin-1"})
    assert refused.status_code == 422 and "gb18030" in refused.text


def test_a_segment_export_in_gb18030_with_the_zone_named(client, team, engine):
    from clm.segments.service import create_segment

    upsert_customer(
        engine, CustomerIn(external_id="w2", first_name="芳", last_name="王", city="上海"), actor="t"
    )
    segment, _ = create_segment(
        engine, "上海客户", where='city = "Shanghai"'
    )  # a Chinese name, either city name
    sign_in(client, "mark")
    response = client.get(f"/segments/{segment.id}/export.csv", params={"encoding": "gb18030"})
    assert response.status_code == 200 and response.headers["content-type"].endswith("gb18030")
    header, row = response.content.decode("gb18030").splitlines()[:2]
    assert header.endswith("entered_at (Asia/Shanghai)") and "王芳" in row
    assert "filename*=UTF-8''segment-" in response.headers["content-disposition"]


def test_a_segment_may_be_named_in_chinese_through_the_api(client, personas):
    headers = personas.headers("alice")
    made = client.post(
        "/api/v1/segments", json={"name": "高价值客户", "where": "orders >= 3"}, headers=headers
    )
    assert made.status_code in (200, 201), made.text
    assert client.get("/api/v1/segments/高价值客户", headers=headers).json()["name"] == "高价值客户"
    bad = client.post("/api/v1/segments", json={"name": "_x", "where": "true"}, headers=headers)
    assert bad.status_code == 422 and "Chinese too" in bad.text
