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
