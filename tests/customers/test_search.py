"""Customer search: by the start of a name in either order (Chinese and Latin names, full-width
letters, any case), by id and by identities; merged profiles lead to their survivor; a name is
found by reading its index, not every profile, on both stores."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from clm.customers.merge import merge_customers
from clm.customers.names import name_keys
from clm.customers.schemas import CustomerIn
from clm.customers.search import name_queries, search_customer_ids, search_customers
from clm.customers.service import get_customers, upsert_customer


def add(engine, **fields):  # type: ignore[no-untyped-def]
    return upsert_customer(engine, CustomerIn(**fields), actor="test")[0].id


def test_name_keys_are_case_folded_without_spaces_in_both_orders():
    assert name_keys("伟", "张") == {"name_key": "张伟", "given_name_key": "伟张"}
    assert name_keys("Ann", "Lee") == {"name_key": "leeann", "given_name_key": "annlee"}
    assert name_keys("Ｍａｒｙ Jane", "van Dyke") == {
        "name_key": "vandykemaryjane",
        "given_name_key": "maryjanevandyke",
    }
    assert name_keys("热合曼", "阿卜杜·") == {"name_key": "阿卜杜热合曼", "given_name_key": "热合曼阿卜杜"}
    assert name_keys(None, " ") == {"name_key": None, "given_name_key": None}


def test_search_by_the_start_of_a_name_in_either_order(engine):
    wei = add(engine, external_id="w", first_name="伟", last_name="张", email="wei@example.com")
    wen = add(engine, external_id="z", first_name="文", last_name="张")
    ann = add(engine, external_id="a", first_name="Ann", last_name="Lee", phone="13812345678")
    nameless = add(engine, external_id="n")
    found = {
        q: search_customer_ids(engine, q)
        for q in ("张", "张伟", "张 伟", "伟", "Ann", "ann l", "Lee Ann", "LEE", "ａｎｎ", "zz", "  ")
    }
    assert found["张"] == [wei, wen]  # name order: 张伟 before 张文 (code points)
    assert found["张伟"] == found["张 伟"] == found["伟"] == [wei]
    assert found["Ann"] == found["ann l"] == found["Lee Ann"] == found["LEE"] == found["ａｎｎ"] == [ann]
    assert found["zz"] == found["  "] == []
    # identities and ids match exactly, and come before names
    assert search_customer_ids(engine, "WEI@example.com") == [wei]
    assert search_customer_ids(engine, "138 1234 5678") == [ann]
    assert search_customer_ids(engine, str(nameless)) == [nameless]
    assert search_customer_ids(engine, "a") == [ann]  # the external id a, then no name starts with it
    assert search_customer_ids(engine, "张", limit=1) == [wei]
    # whole profiles, in the same order, read together
    profiles = search_customers(engine, "张")
    assert [c.id for c in profiles] == [wei, wen]
    assert profiles[0].email == "wei@example.com" and ("email", "wei@example.com") in {
        (i.kind, i.value) for i in profiles[0].identities
    }


def test_a_merged_profile_is_found_as_its_survivor(engine):
    kept = add(engine, external_id="k", first_name="Ann", last_name="Lee")
    gone = add(engine, external_id="g", first_name="Anna", last_name="Lee")
    merge_customers(engine, kept, [gone], reason="same person", actor="test")
    assert search_customer_ids(engine, "anna") == []  # the tombstone's name is not a live profile
    assert search_customer_ids(engine, "g") == [kept]  # its identities now belong to the survivor
    assert search_customer_ids(engine, str(gone)) == [kept]
    assert [c.id for c in get_customers(engine, [gone, kept])] == [kept]  # live profiles only
    assert get_customers(engine, [kept])[0].merged_from == [gone]


def test_a_renamed_profile_is_found_by_its_new_name(engine):
    cid = add(engine, external_id="r", first_name="Ann", last_name="Lee")
    add(engine, external_id="r", first_name="Ann", last_name="Wong")
    assert search_customer_ids(engine, "lee") == []
    assert search_customer_ids(engine, "wong") == search_customer_ids(engine, "ann w") == [cid]


@pytest.mark.parametrize("query", ["张", "ann l"])
def test_a_name_search_reads_its_index(engine, query):
    add(engine, external_id="w", first_name="伟", last_name="张")
    for statement in name_queries(query, 20):
        compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SET LOCAL enable_seqscan = off"))  # as on a big table
                plan = "\n".join(conn.execute(text(f"EXPLAIN {compiled}")).scalars())
                assert "Seq Scan" not in plan and "ix_customers_" in plan, plan
            else:
                plan = " ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
                assert "USING INDEX ix_customers_" in plan and "SCAN customers" not in plan.replace(
                    "SCAN customers USING", ""
                ), plan
