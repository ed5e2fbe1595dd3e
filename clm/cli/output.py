"""Shared terminal output: the console, JSON printing and byte-based progress bars."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

console = Console()
err_console = Console(stderr=True)


def local(moment: datetime | date | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) moment as the store's wall time (CLM_DEFAULT_TIMEZONE); "" for None. A
    table of such times names the zone in its caption (`times_in`), a sentence with `show_time`."""
    from clm.core.timeutil import as_utc, store_zone

    if moment is None:
        return ""
    if not isinstance(moment, datetime):  # a calendar date is shown as it is
        return moment.strftime(fmt)
    return as_utc(moment).astimezone(store_zone()).strftime(fmt)


def local_day(moment: datetime | date | None) -> str:
    return local(moment, "%Y-%m-%d")


def times_in() -> str:
    """The caption of a table with times: the zone they are in."""
    from clm.core.settings import store_timezone_name

    return f"times in {store_timezone_name()}"


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def print_json(value: Any) -> None:
    """Machine-readable output (the same shapes the API returns)."""
    print(json.dumps(value, default=_default, ensure_ascii=False, indent=2))


@contextmanager
def byte_progress(description: str, total: int, enabled: bool = True) -> Iterator[Any]:
    """A progress bar over bytes of a file; yields a callback taking the bytes done so far."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=not enabled,
    )
    with progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.update(task, completed=done)
