"""Cities and provinces match in Chinese and English: 上海 = 上海市 = Shanghai, in segment
conditions (the built-in tier-1 segment too) and in the console's customer filter."""

from clm.core.places import find_places, place_names, same_place, tier_cities
from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.segments.service import customers_matching
from clm.views.customer_list import CustomerFilter, customer_page


def people(engine):
    ids = {}
    for ext, city, region in [
        ("zh", "上海", "上海市"),
        ("zh-suffix", "上海市", None),
        ("en", "Shanghai", "Shanghai"),
        ("en-lower", "shanghai", None),
        ("bj", "北京", None),
        ("sz", "Shenzhen", "广东省"),
        ("gz", "广州市", "Guangdong"),
        ("hz", "杭州", "浙江"),
        ("xx", "Springfield", None),
    ]:
        item = CustomerIn(external_id=ext, city=city, region=region)
        customer, _ = upsert_customer(engine, item, actor="t")
        ids[ext] = customer.id
    return ids


def test_the_table_knows_both_names():
    assert same_place("上海", "Shanghai") and same_place("上海市", "SHANGHAI")
    assert not same_place("上海", "北京")
    assert "Guangzhou" in place_names("广州") and "广州市" in place_names("Guangzhou")
    assert [p.zh for p in tier_cities("1")] == ["北京", "上海", "广州", "深圳"]
    assert place_names("Springfield") == ("Springfield",) and not find_places("Springfield")


def test_conditions_match_either_name(engine):
    ids = people(engine)
    shanghai = {ids[k] for k in ("zh", "zh-suffix", "en", "en-lower")}
    with engine.connect() as conn:
        assert set(customers_matching(conn, 'city = "上海"')) == shanghai
        assert set(customers_matching(conn, 'city = "Shanghai"')) == shanghai
        tier1 = set(customers_matching(conn, 'city in ["Beijing", "Shanghai", "Guangzhou", "Shenzhen"]'))
        assert tier1 == shanghai | {ids["bj"], ids["sz"], ids["gz"]}
        assert set(customers_matching(conn, 'region = "广东"')) == {ids["sz"], ids["gz"]}
        others = set(customers_matching(conn, 'city != "上海"'))
        assert not others & shanghai and ids["hz"] in others
        assert set(customers_matching(conn, 'city = "Springfield"')) == {ids["xx"]}


def test_the_customer_list_filters_by_either_name(engine):
    ids = people(engine)
    found = customer_page(engine, CustomerFilter(city="Shanghai"), "id", 1, 50)
    assert {r.id for r in found.rows} == {ids[k] for k in ("zh", "zh-suffix", "en", "en-lower")}
    assert {r.id for r in customer_page(engine, CustomerFilter(city="深圳"), "id", 1, 50).rows} == {ids["sz"]}
