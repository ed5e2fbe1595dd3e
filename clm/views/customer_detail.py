"""What the console's 360° page shows beyond the API's customer view (clm.views.customer, which it
starts from, so page and API agree): value scores, churn risk with its reasons, the points
ledger, survey answers, every ticket and follow-up task (closed and done ones too),
recommendations, the orders a page at a time and the event timeline filtered by type and
channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from clm.analytics.churn_store import ChurnRisk, customer_risk
from clm.analytics.recommend_store import Recommendation, recommend
from clm.analytics.service import ValueScore, customer_value
from clm.commerce.schemas import Order
from clm.commerce.service import customer_orders
from clm.commerce.tables import order_items, orders, products
from clm.core.errors import ClmError, NotFound
from clm.events.schemas import Event
from clm.events.service import timeline
from clm.events.tables import events, survey_answers
from clm.feedback.service import Task, Ticket, list_tasks, list_tickets
from clm.loyalty.ledger import Posting, history
from clm.views.customer import CustomerView, customer_view

RECOMMENDATIONS = 5
LEDGER_LINES = 10
CASES = 20  # tickets, and tasks, shown: the newest ticket and the soonest due tasks first


@dataclass(frozen=True)
class SurveyAnswer:
    answered_at: datetime
    survey: str | None
    score: float | None
    channel: str
    comment: str | None


@dataclass(frozen=True)
class CustomerDetail:
    view: CustomerView
    value: ValueScore | None  # None until `clm clv score` has scored them (or no counted order)
    historical_clv: float  # margin to date: completed orders' revenue - their products' cost
    risk: ChurnRisk | None
    ledger: list[Posting]
    answers: list[SurveyAnswer]
    recommendations: list[Recommendation]
    tickets: list[Ticket]  # every status, newest first
    tasks: list[Task]  # open, done and cancelled, soonest due first


@dataclass(frozen=True)
class OrderPage:
    orders: list[Order]  # newest first, with their items
    page: int
    pages: int
    total: int


def customer_detail(engine: Engine, customer_id: int) -> CustomerDetail:
    """Everything the 360° page shows about one customer (a merged id shows its survivor)."""
    view = customer_view(engine, customer_id, events=0, orders=0, cases=False)
    cid = view.profile.id
    try:
        value: ValueScore | None = customer_value(engine, cid)
    except NotFound:
        value = None
    try:
        risk: ChurnRisk | None = customer_risk(engine, cid)
    except NotFound:
        risk = None
    try:
        recommended = recommend(engine, cid, RECOMMENDATIONS)
    except ClmError:  # no products or orders to learn from yet
        recommended = []
    answers_q = (
        select(
            survey_answers.c.answered_at,
            survey_answers.c.survey,
            survey_answers.c.score,
            survey_answers.c.channel,
            events.c.properties,
        )
        .join(events, events.c.id == survey_answers.c.event_pk)
        .where(survey_answers.c.customer_id == cid)
        .order_by(survey_answers.c.answered_at.desc())
        .limit(50)
    )
    cost_q = (
        select(func.coalesce(func.sum(order_items.c.quantity * func.coalesce(products.c.cost, 0)), 0))
        .select_from(order_items)
        .join(orders, orders.c.id == order_items.c.order_pk)
        .outerjoin(products, products.c.sku == order_items.c.sku)
        .where(orders.c.customer_id == cid, orders.c.status == "completed")
    )
    with engine.connect() as conn:
        cost = float(conn.execute(cost_q).scalar_one())
        answers = [
            SurveyAnswer(r.answered_at, r.survey, r.score, r.channel, (r.properties or {}).get("comment"))
            for r in conn.execute(answers_q)
        ]
    return CustomerDetail(
        view=view,
        value=value,
        historical_clv=round(view.orders.revenue - cost, 2),
        risk=risk,
        ledger=history(engine, cid, limit=LEDGER_LINES),
        answers=answers,
        recommendations=recommended,
        tickets=list_tickets(engine, customer_id=cid, limit=CASES),
        tasks=list_tasks(engine, status=None, customer_id=cid, limit=CASES),
    )


def order_page(engine: Engine, customer_id: int, total: int, page: int = 1, per_page: int = 10) -> OrderPage:
    """One page of a customer's orders with their items, newest first; `total` is how many
    orders they have (the view's order summary), so the pages can be named without a count."""
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    found = customer_orders(engine, customer_id, limit=per_page, offset=(page - 1) * per_page)
    return OrderPage(found, page, pages, total)


def customer_events(
    engine: Engine,
    customer_id: int,
    *,
    type: str = "",
    channel: str = "",
    limit: int = 50,
    offset: int = 0,
) -> list[Event]:
    """A customer's events, newest first, of one type and/or channel when given (the API's
    timeline, narrowed)."""
    return timeline(engine, customer_id, limit, offset, type=type, channel=channel)


def event_channels(engine: Engine, customer_id: int) -> list[str]:
    """The channels a customer's events came through."""
    query = (
        select(events.c.channel)
        .where(events.c.customer_id == customer_id, events.c.channel.is_not(None))
        .distinct()
        .order_by(events.c.channel)
    )
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def describe(detail: CustomerDetail) -> dict[str, Any]:
    """The 360° page's key figures, embedded in the page as JSON (a test compares them with the
    API's customer view)."""
    v = detail.view
    return {
        "customer_id": v.profile.id,
        "stage": v.stage.stage,
        "stage_history": [(h.from_stage, h.to_stage) for h in v.stage.history],
        "orders": v.orders.orders,
        "completed": v.orders.completed,
        "revenue": v.orders.revenue,
        "loyalty_balance": v.loyalty.balance,
        "tier": v.loyalty.tier,
        "segments": [s.segment for s in v.segments],
        "event_counts": v.event_counts,
        "p_alive": detail.value.p_alive if detail.value else None,
        "clv": detail.value.clv if detail.value else None,
        "churn_probability": detail.risk.probability if detail.risk else None,
        "historical_clv": detail.historical_clv,
    }
