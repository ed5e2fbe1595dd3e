"""Surveys, NPS/CSAT, tickets and SLAs, follow-up tasks, against figures worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from clm.core.errors import Conflict, InvalidInput
from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.events.tables import survey_answers
from clm.feedback.service import (
    add_message,
    answer,
    comments,
    create_survey,
    get_ticket,
    install_builtin_surveys,
    invite,
    list_tasks,
    list_tickets,
    open_ticket,
    record_feedback,
    set_sla,
    survey_results,
    ticket_stats,
    update_ticket,
)
from clm.segments.service import create_segment
from clm.views.groups import customer_groups

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def person(engine, name: str) -> int:
    return upsert_customer(engine, CustomerIn(external_id=name, first_name=name.title()), actor="test")[0].id


def token_of(link: str | None) -> str:
    assert link is not None
    return link.rsplit("/", 1)[1]


def test_nps_and_csat_match_the_hand_computed_figures(engine):
    install_builtin_surveys(engine)
    people = [person(engine, f"p{i}") for i in range(10)]
    # NPS answers 10, 9, 9, 8, 7, 6, 5, 3, 0, 10 → promoters 4, passives 2, detractors 4 → NPS 0
    for who, score in zip(people, [10, 9, 9, 8, 7, 6, 5, 3, 0, 10], strict=True):
        record_feedback(engine, "nps", who, score, channel="email" if score >= 7 else "sms")
    result = survey_results(engine, "nps", survey="nps", by="channel")
    o = result.overall
    assert (o.responses, o.promoters, o.passives, o.detractors) == (10, 4, 2, 4)
    assert o.nps == 0.0
    by = {g.label: g for g in result.groups}
    assert by["email"].nps == pytest.approx(100 * 4 / 6)  # 10, 9, 9, 8, 7, 10 → 4 promoters, 0 detractors
    assert by["sms"].nps == -100.0
    assert o.distribution[10] == 2 and o.distribution[1] == 0
    # CSAT: 5, 4, 4, 3, 1 → 3 of 5 satisfied = 60 %
    for who, score in zip(people, [5, 4, 4, 3, 1], strict=False):
        record_feedback(engine, "support-csat", who, score)
    csat = survey_results(engine, "csat", survey="support-csat").overall
    assert (csat.responses, csat.satisfied, csat.csat) == (5, 3, 60.0)
    # a score out of range is refused, not stored
    with pytest.raises(InvalidInput, match="from 1 to 5"):
        record_feedback(engine, "support-csat", people[0], 9)


def test_results_by_segment_count_each_answer_in_every_segment_of_its_customer(engine):
    install_builtin_surveys(engine)
    a, b = person(engine, "ann"), person(engine, "bob")
    create_segment(engine, "vip", static=True, customer_ids=[a])
    create_segment(engine, "all-two", static=True, customer_ids=[a, b])
    record_feedback(engine, "nps", a, 10)
    record_feedback(engine, "nps", b, 2)
    result = survey_results(engine, "nps", by="segment", groups=customer_groups("segment"))
    by = {g.label: (g.responses, g.nps) for g in result.groups}
    assert by == {"vip": (1, 100.0), "all-two": (2, 0.0)}
    assert result.overall.responses == 2  # counted once overall
    only_vip = survey_results(engine, "nps", groups=customer_groups(None, "vip"))
    assert only_vip.overall.responses == 1


def test_a_link_is_answered_once_and_a_detractor_gets_a_follow_up_task(engine):
    create_survey(
        engine, "after-order", "nps", "Would you recommend us?", "您会推荐我们吗?", follow_up_assignee="lin"
    )
    ann = person(engine, "ann")
    link = invite(engine, "after-order", ann, reference="order:A-1").link
    assert (
        invite(engine, "after-order", ann, reference="order:A-1").link is None
    )  # same occasion, no second link
    token = token_of(link)
    done = answer(engine, token, 4, "the parcel arrived broken")
    assert done.flagged and done.task_id is not None
    with pytest.raises(Conflict, match="already been answered"):
        answer(engine, token, 10)
    tasks = list_tasks(engine)
    assert [(t.customer_id, t.assignee, t.source) for t in tasks] == [(ann, "lin", "detractor")]
    assert "NPS 4" in tasks[0].title
    listed = comments(engine, survey="after-order", flagged_only=True)
    assert [(c.score, c.comment, c.task_id) for c in listed] == [
        (4, "the parcel arrived broken", done.task_id)
    ]
    assert survey_results(engine, "nps", survey="after-order").overall.responses == 1
    with engine.connect() as conn:  # the answer is in the narrow table KPIs read, once
        rows = conn.execute(
            select(survey_answers.c.customer_id, survey_answers.c.survey, survey_answers.c.score)
        )
        assert [tuple(r) for r in rows] == [(ann, "nps", 4.0)]


def test_ticket_sla_figures_and_breaches(engine):
    ann = person(engine, "ann")
    set_sla(engine, "high", 2, 10)
    fast = open_ticket(engine, ann, "Cannot log in", "help", priority="high", now=T0)
    add_message(
        engine, fast.id, "note", "lin", "looking", now=T0 + timedelta(minutes=30)
    )  # a note is no reply
    add_message(engine, fast.id, "agent", "lin", "try this", now=T0 + timedelta(hours=1))
    update_ticket(engine, fast.id, status="resolved", now=T0 + timedelta(hours=6))
    slow = open_ticket(engine, ann, "Refund?", "where is it", priority="high", now=T0)
    add_message(engine, slow.id, "agent", "lin", "checking", now=T0 + timedelta(hours=3))  # 3 h > 2 h target
    update_ticket(engine, slow.id, status="resolved", now=T0 + timedelta(hours=12))  # 12 h > 10 h

    t = get_ticket(engine, fast.id)
    assert (t.first_response_hours, t.resolution_hours) == (1.0, 6.0)
    assert not t.sla.first_response_breached and not t.sla.resolution_breached
    stats = {s.priority: s for s in ticket_stats(engine)}["high"]
    assert (stats.tickets, stats.unresolved) == (2, 0)
    assert stats.median_first_response_hours == 2.0  # median of 1 h and 3 h
    assert stats.median_resolution_hours == 9.0  # median of 6 h and 12 h
    assert (stats.first_response_breaches, stats.resolution_breaches) == (1, 1)
    assert [x.id for x in list_tickets(engine, breached=True)] == [slow.id]


def test_ticket_moves_follow_the_rules_and_resolution_can_send_a_csat_survey(engine):
    install_builtin_surveys(engine)
    ann = person(engine, "ann")
    t = open_ticket(engine, ann, "Broken zip", "the zip broke")
    assert update_ticket(engine, t.id, assignee="lin").status == "assigned"
    assert update_ticket(engine, t.id, status="waiting").status == "waiting"
    assert add_message(engine, t.id, "customer", "ann", "photo attached").status == "assigned"
    resolved = update_ticket(engine, t.id, status="resolved", csat_survey="support-csat")
    assert resolved.survey is not None and resolved.survey.link
    answer(engine, token_of(resolved.survey.link), 5, "quick, thanks")
    assert survey_results(engine, "csat", survey="support-csat").overall.csat == 100.0
    closed = update_ticket(engine, t.id, status="closed")
    with pytest.raises(InvalidInput, match="closed is final"):
        update_ticket(engine, closed.id, status="open")


def test_overdue_tasks_are_listed(engine):
    from clm.feedback.service import create_task, finish_task

    ann = person(engine, "ann")
    late = create_task(engine, ann, "Call about the refund", due_at=datetime.now(UTC) - timedelta(hours=1))
    create_task(engine, ann, "Birthday call", due_at=datetime.now(UTC) + timedelta(days=3))
    assert [t.id for t in list_tasks(engine, overdue=True)] == [late.id]
    finish_task(engine, late.id)
    assert list_tasks(engine, overdue=True) == []
