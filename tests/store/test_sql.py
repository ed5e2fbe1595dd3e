"""Statements spelled differently per store behind one name (clm.store.sql)."""

from sqlalchemy import Engine, select

from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.customers.tables import customers
from clm.store.sql import in_ids


def test_a_list_of_ids_selects_exactly_those_rows_in_one_statement_text(engine: Engine) -> None:
    ids = [upsert_customer(engine, CustomerIn(external_id=f"c{i}"), actor="t")[0].id for i in range(5)]
    query = select(customers.c.id).where(in_ids(customers.c.id)).order_by(customers.c.id)
    texts = set()
    with engine.connect() as conn:
        for wanted in ([ids[1], ids[3]], [ids[0]], ids, [], [ids[4], 10**12]):
            result = conn.execute(query, {"scope": wanted})
            assert [r[0] for r in result] == sorted(set(wanted) & set(ids))
            texts.add(result.context.statement)
        named = conn.execute(select(customers.c.id).where(in_ids(customers.c.id, "who")), {"who": ids[:2]})
        assert [r[0] for r in named] == ids[:2]
    if engine.dialect.name == "postgresql":  # one array parameter: the same text for any length
        assert len(texts) == 1
        assert "ANY" in texts.pop()
