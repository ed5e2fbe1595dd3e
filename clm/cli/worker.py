"""`clm worker` runs the scheduled jobs; `clm schedule list|set` shows and changes their intervals."""

from __future__ import annotations

import logging
import time
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from clm.cli.context import engine
from clm.cli.output import console, local, print_json, times_in
from clm.journeys.service import Tick, tick
from clm.worker.import_runner import run_queued
from clm.worker.jobs import parse_every, run_due, schedule, set_interval

log = logging.getLogger("clm.worker")
schedule_app = typer.Typer(help="The periodic jobs the worker runs.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.add_typer(schedule_app, name="schedule")


def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Run what is due now, then exit (e.g. from cron).")
    ] = False,
    poll: Annotated[int, typer.Option(min=1, help="Seconds between rounds.")] = 10,
    journeys: Annotated[bool, typer.Option(help="Also run journeys and send due messages.")] = True,
) -> None:
    """Run due jobs (stages and loyalty daily, segments hourly by default), files queued on the
    console's imports page, and the journeys (enrol, exit, due steps, outbox) until stopped. Start
    as many workers as you like, on as many machines: each job run and each import is claimed by
    one of them, each step and message by one of them."""
    eng = engine()
    while True:
        for name, status, message in run_due(eng):
            colour = "green" if status == "ok" else "red"
            console.print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{colour}]{name} {status}[/]: {message}")
        for job in run_queued(eng):  # files queued on the console's imports page
            colour = "green" if job.status == "done" else "red"
            said = f"{job.accepted:,} accepted, {job.rejected:,} rejected"
            if job.error:
                said += f"; {job.error}"
            console.print(
                f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{colour}]import {job.id} {job.status}[/]: "
                f"{escape(job.file_name)}: {escape(said)}"
            )
        failed = False
        if journeys:
            try:
                _say(tick(eng))
            except Exception as exc:  # said, and tried again next round: a worker does not stop
                log.exception("journeys round failed")
                why = escape(f"{type(exc).__name__}: {exc}"[:500])
                console.print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [red]journeys round failed[/]: {why}")
                failed = True
        if once:
            if failed:
                raise typer.Exit(1)
            return
        time.sleep(poll)


def _say(done: Tick) -> None:
    d = done.dispatch
    if done.enrolled or done.steps or d.claimed or done.exited:
        console.print(
            f"{time.strftime('%Y-%m-%d %H:%M:%S')} journeys: {sum(done.enrolled.values()):,} entered, "
            f"{done.exited:,} left, {done.steps:,} steps; messages {d.sent:,} sent, {d.skipped:,} skipped, "
            f"{d.deferred:,} delayed (quiet hours), {d.retried:,} to retry, {d.failed:,} failed",
            highlight=False,
        )


def _every(seconds: int | None) -> str:
    if seconds is None:
        return "off"
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@schedule_app.command("list")
def list_jobs(json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every job: how often, when next, how the last run went."""
    jobs = schedule(engine())
    if json:
        print_json(jobs)
        return
    table = Table(
        "job", "every", "next run", "last run", "status", "what it does", title="schedule", caption=times_in()
    )
    for j in jobs:
        last = f"{local(j.last_finished_at)}" if j.last_finished_at else "-"
        status = f"{j.last_status}: {j.last_message}" if j.last_status else "-"
        table.add_row(j.name, _every(j.every_seconds), f"{local(j.next_run_at)}", last, status, j.description)
    console.print(table)


@schedule_app.command("set")
def set_job(
    name: Annotated[str, typer.Argument(help="The job (see `clm schedule list`).")],
    every: Annotated[str, typer.Argument(help="How often: 90s, 30m, 1h, 1d, or off.")],
) -> None:
    """Change how often a job runs (or switch it off)."""
    set_interval(engine(), name, parse_every(every))
    console.print(f"{name}: every {every}")
