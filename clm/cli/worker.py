"""`clm worker` runs the scheduled jobs; `clm schedule list|set` shows and changes their intervals."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from clm.cli.context import engine
from clm.cli.output import console, print_json
from clm.worker.jobs import parse_every, run_due, schedule, set_interval

schedule_app = typer.Typer(help="The periodic jobs the worker runs.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.add_typer(schedule_app, name="schedule")


def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Run what is due now, then exit (e.g. from cron).")
    ] = False,
    poll: Annotated[int, typer.Option(min=1, help="Seconds between looks at the schedule.")] = 30,
) -> None:
    """Run due jobs (stage assignment daily, segment rebuild hourly by default) until stopped.
    Start as many workers as you like: each job run is claimed by exactly one of them."""
    eng = engine()
    while True:
        for name, status, message in run_due(eng):
            colour = "green" if status == "ok" else "red"
            console.print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{colour}]{name} {status}[/]: {message}")
        if once:
            return
        time.sleep(poll)


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
    table = Table("job", "every", "next run", "last run", "status", "what it does", title="schedule")
    for j in jobs:
        last = f"{j.last_finished_at:%Y-%m-%d %H:%M}" if j.last_finished_at else "-"
        status = f"{j.last_status}: {j.last_message}" if j.last_status else "-"
        table.add_row(
            j.name, _every(j.every_seconds), f"{j.next_run_at:%Y-%m-%d %H:%M}", last, status, j.description
        )
    console.print(table)


@schedule_app.command("set")
def set_job(
    name: Annotated[str, typer.Argument(help="The job (see `clm schedule list`).")],
    every: Annotated[str, typer.Argument(help="How often: 90s, 30m, 1h, 1d, or off.")],
) -> None:
    """Change how often a job runs (or switch it off)."""
    set_interval(engine(), name, parse_every(every))
    console.print(f"{name}: every {every}")
