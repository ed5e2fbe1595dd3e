"""Stage runs racing each other: re-evaluations of the same customers from several requests,
and a full run alongside, finish without errors and leave one stage row per customer."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from clm.events.schemas import validate_event
from clm.events.service import ingest
from clm.lifecycle.service import assign_stages, reassess_customers
from clm.lifecycle.tables import customer_features, customer_stages, stage_transitions


def test_parallel_re_evaluations_and_a_full_run_do_not_collide(engine):
    when = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    batch = [validate_event({"type": "signup", "timestamp": when, "external_id": f"u{i}"}) for i in range(30)]
    ids = sorted(ingest(engine, batch, actor="t").customer_ids)

    def work(k: int) -> int:
        if k == 3:
            return assign_stages(engine).evaluated
        return reassess_customers(engine, ids).evaluated

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(work, range(8))) == [30] * 8
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(customer_features)).scalar_one() == 30
        assert conn.execute(select(func.count()).select_from(customer_stages)).scalar_one() == 30
        # every customer entered acquisition exactly once, whichever run got there first
        assert conn.execute(select(func.count()).select_from(stage_transitions)).scalar_one() == 30
