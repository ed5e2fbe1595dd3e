"""Follow-up tasks (回访, customer-care calls): a person, a customer, a due date. Created by hand,
by a detractor's answer, by a ticket or by a journey step; overdue ones are listed first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from clm.core.errors import InvalidInput, NotFound
from clm.core.timeutil import as_utc, utcnow
from clm.customers.service import require_customer
from clm.feedback.tables import tasks

SOURCES = ("manual", "detractor", "ticket", "journey")
STATUSES = ("open", "done", "cancelled")


@dataclass(frozen=True)
class Task:
    id: int
    customer_id: int
    title: str
    notes: str
    assignee: str | None
    due_at: datetime
    status: str
    source: str
    reference: str | None
    created_by: str
    created_at: datetime
    done_at: datetime | None
    overdue: bool


def _task(r: Any, now: datetime) -> Task:
    return Task(
        r.id,
        r.customer_id,
        r.title,
        r.notes,
        r.assignee,
        r.due_at,
        r.status,
        r.source,
        r.reference,
        r.created_by,
        r.created_at,
        r.done_at,
        r.status == "open" and r.due_at < now,
    )


def create_task_in(
    conn: Connection,
    customer_id: int,
    title: str,
    *,
    due_at: datetime,
    notes: str = "",
    assignee: str | None = None,
    source: str = "manual",
    reference: str | None = None,
    created_by: str = "cli",
) -> int:
    """Create a task inside the caller's transaction; with a reference, at most one per reference."""
    if source not in SOURCES:
        raise InvalidInput(f"must be one of {', '.join(SOURCES)}", "source")
    if not title.strip():
        raise InvalidInput("say what to do", "title")
    if reference is not None:
        found = conn.execute(select(tasks.c.id).where(tasks.c.reference == reference)).scalar()
        if found is not None:
            return int(found)
    return int(
        conn.execute(
            insert(tasks)
            .values(
                customer_id=customer_id,
                title=title.strip()[:300],
                notes=notes,
                assignee=(assignee or "").strip() or None,
                due_at=as_utc(due_at),
                status="open",
                source=source,
                reference=reference,
                created_by=created_by,
                created_at=utcnow(),
            )
            .returning(tasks.c.id)
        ).scalar_one()
    )


def create_task(
    engine: Engine,
    customer_id: int,
    title: str,
    *,
    due_at: datetime,
    notes: str = "",
    assignee: str | None = None,
    source: str = "manual",
    reference: str | None = None,
    created_by: str = "cli",
) -> Task:
    with engine.begin() as conn:
        require_customer(conn, customer_id)
        task_id = create_task_in(
            conn,
            customer_id,
            title,
            due_at=due_at,
            notes=notes,
            assignee=assignee,
            source=source,
            reference=reference,
            created_by=created_by,
        )
    return get_task(engine, task_id)


def get_task(engine: Engine, task_id: int) -> Task:
    with engine.connect() as conn:
        row = conn.execute(select(tasks).where(tasks.c.id == task_id)).first()
    if row is None:
        raise NotFound(f"no task with id {task_id}")
    return _task(row, utcnow())


def list_tasks(
    engine: Engine,
    *,
    status: str | None = "open",
    overdue: bool = False,
    assignee: str | None = None,
    customer_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Task]:
    """Tasks, soonest due first; `overdue` keeps open tasks past their due time."""
    now = utcnow()
    query = select(tasks)
    if overdue:
        query = query.where(tasks.c.status == "open", tasks.c.due_at < now)
    elif status is not None:
        if status not in STATUSES:
            raise InvalidInput(f"must be one of {', '.join(STATUSES)}", "status")
        query = query.where(tasks.c.status == status)
    if assignee:
        query = query.where(tasks.c.assignee == assignee)
    if customer_id is not None:
        query = query.where(tasks.c.customer_id == customer_id)
    query = query.order_by(tasks.c.due_at, tasks.c.id).limit(limit).offset(offset)
    with engine.connect() as conn:
        return [_task(r, now) for r in conn.execute(query)]


def finish_task(engine: Engine, task_id: int, status: str = "done") -> Task:
    """Mark a task done (or cancelled)."""
    if status not in ("done", "cancelled"):
        raise InvalidInput("a task is finished as done or cancelled", "status")
    with engine.begin() as conn:
        changed = conn.execute(
            update(tasks)
            .where(tasks.c.id == task_id, tasks.c.status == "open")
            .values(status=status, done_at=utcnow())
        ).rowcount
    task = get_task(engine, task_id)
    if not changed and task.status != status:
        raise InvalidInput(f"task {task_id} is already {task.status}", "status")
    return task
