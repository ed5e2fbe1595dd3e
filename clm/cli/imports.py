"""`clm import events|customers|orders|products|spend FILE`: bulk files, streamed, row-checked."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import Engine

from clm.cli.context import engine
from clm.cli.output import byte_progress, console, print_json
from clm.commerce.importer import import_orders, import_products, import_spend
from clm.commerce.tables import marketing_spend, order_days, order_items, orders, products
from clm.core.files import DataFile, parse_mapping
from clm.core.imports import ImportReport
from clm.core.memory import release_freed_memory
from clm.customers.importer import import_customers
from clm.customers.tables import consents, customer_identities, customers
from clm.events.importer import import_events
from clm.events.tables import events, survey_answers
from clm.lifecycle.service import StageRun, assign_stages, reassess_customers
from clm.loyalty.service import refresh_loyalty
from clm.segments.service import rebuild_segments, recheck_customers
from clm.store.engine import refresh_statistics

app = typer.Typer(
    help="Import CSV/TSV/JSON Lines files (optionally .gz) or Excel workbooks (.xlsx). Exit code 0: "
    "all rows accepted (some perhaps without a bad optional field); 1: some rows rejected (the good "
    "ones are stored); 2: the file cannot be used.",
    no_args_is_help=True,
)

# An import storing this many rows gathers fresh planner statistics for the tables it filled
# before the refresh reads them (autovacuum's own pass can be a minute or more away).
STATISTICS_AFTER = 50_000
_PROFILES = (customers, customer_identities)
_TABLES = {
    "events": (events, survey_answers, *_PROFILES),
    "customers": (*_PROFILES, consents),
    "orders": (orders, order_items, order_days, *_PROFILES),
    "products": (products,),
    "spend": (marketing_spend,),
}

FileArg = Annotated[
    Path,
    typer.Argument(help="A .csv, .tsv, .txt or .jsonl file (optionally .gz), or .xlsx.", show_default=False),
]
FormatOpt = Annotated[
    str | None, typer.Option("--format", help="csv, tsv, jsonl or xlsx (default: from the file name).")
]
EncodingOpt = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="The text's encoding, e.g. utf-8, gb18030 (GBK), utf-16 (default: a byte-order mark, "
        "else UTF-8 if the first non-ASCII line is valid UTF-8, else GB18030).",
    ),
]
SheetOpt = Annotated[
    str | None,
    typer.Option("--sheet", help="The one sheet of an .xlsx workbook to import (default: every sheet)."),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="Rename a column: FILE_COLUMN=FIELD (repeatable), e.g. --map user_id=external_id.",
    ),
]
RejectsOpt = Annotated[
    Path | None,
    typer.Option(
        "--rejections",
        help="Where to write every rejected line and why (default: ./<file>.rejections.csv).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


def _run(
    kind: str,
    importer: Callable[..., ImportReport],
    file: Path,
    fmt: str | None,
    mapping: list[str] | None,
    rejections: Path | None,
    as_json: bool,
    encoding: str | None = None,
    sheet: str | None = None,
) -> None:
    data = DataFile(file, fmt, parse_mapping(mapping or []), encoding=encoding, sheet=sheet)
    eng = engine()
    rejections = rejections or Path.cwd() / f"{file.name}.rejections.csv"
    started = time.perf_counter()
    with byte_progress(f"importing {kind}", data.size, enabled=not as_json) as progress:
        report = importer(eng, data, rejections_path=rejections, progress=progress)
    imported = time.perf_counter()
    eng.dispose()  # the import's connections and their page caches go before the refresh starts
    release_freed_memory()
    if report.accepted >= STATISTICS_AFTER:
        refresh_statistics(eng, _TABLES.get(report.kind, ()))
    busy = nullcontext() if as_json else console.status("bringing loyalty, stages and segments up to date")
    with busy:
        _refresh_loyalty(eng, report)
        stages = _refresh_stages(eng, report)
        _refresh_segments(eng, report)
    seconds = {"import": round(imported - started, 2), "refresh": round(time.perf_counter() - imported, 2)}
    if as_json:
        print_json({**report.as_dict(), "stage_changes": stages.changed if stages else 0, "seconds": seconds})
    else:
        _show(report)
        if stages:
            console.print(
                f"lifecycle stages re-evaluated for {stages.evaluated:,} customers, "
                f"{stages.changed:,} changed"
            )
        console.print(
            f"imported in {seconds['import']:,.1f} s; loyalty, stages and segments brought up to date "
            f"in {seconds['refresh']:,.1f} s"
        )
    raise typer.Exit(report.exit_code)


def _refresh_loyalty(eng: Engine, report: ImportReport) -> None:
    """Orders and events can earn points (or, refunded, cost them); tiers follow."""
    if report.kind in ("orders", "events") and report.customer_ids != set():
        refresh_loyalty(eng, report.customer_ids)


def _refresh_stages(eng: Engine, report: ImportReport) -> StageRun | None:
    """Stages follow the data: the touched customers are re-evaluated (everyone after a big import)."""
    if report.customer_ids is None:
        return assign_stages(eng)
    if report.customer_ids:
        return reassess_customers(eng, report.customer_ids)
    return None


# the kinds of data each import changes, for re-checking only the segments that read them
_CHANGES = {"orders": {"orders"}, "customers": {"profile", "consent"}}


def _refresh_segments(eng: Engine, report: ImportReport) -> None:
    """Segments follow the data too: the touched customers, or every segment after a big import."""
    kinds = _CHANGES.get(report.kind)
    if report.customer_ids is None:
        rebuild_segments(eng, depends=kinds | {"features", "stage"} if kinds else None)
    elif report.customer_ids:
        recheck_customers(eng, report.customer_ids, kinds)


def _show(report: ImportReport) -> None:
    table = Table(title=f"import {report.kind}: {report.file}", show_header=False)
    rows: list[tuple[str, Any]] = [
        ("rows read", report.rows),
        ("accepted", report.accepted),
        ("already stored (duplicates)", report.duplicates),
        ("rejected", report.rejected),
        ("kept without a bad optional field", report.warned),
        *report.counters.items(),
    ]
    for name, value in rows:
        table.add_row(name.replace("_", " "), f"{value:,}")
    console.print(table)
    if report.rejections:
        bad = Table(
            "line",
            "why it was rejected",
            title="rejected lines" + (" (first few)" if report.rejected > len(report.rejections) else ""),
        )
        for r in report.rejections:
            bad.add_row(_where(r.line, r.sheet), r.reason)
        console.print(bad)
    if report.warnings:
        kept = Table(
            "line",
            "left out",
            title="rows kept without a field"
            + (" (first few)" if report.warned > len(report.warnings) else ""),
        )
        for r in report.warnings:
            kept.add_row(_where(r.line, r.sheet), r.reason)
        console.print(kept)
    if report.rejections_file:
        console.print(
            f"every rejected line (and row kept without a field) is listed, with its cells, in "
            f"[bold]{report.rejections_file}[/]: fix it and import it again"
        )


def _where(line: int, sheet: str | None) -> str:
    return f"{sheet}!{line}" if sheet else str(line)


# kind -> (importer, what the file holds); one `clm import KIND FILE` command each.
IMPORTERS: dict[str, tuple[Callable[..., ImportReport], str]] = {
    "events": (
        import_events,
        "Events: type, timestamp, an identity (external_id, email, phone, anonymous_id, "
        "wechat_openid as appid:openid, wechat_unionid, wecom_external_userid), "
        "optional event_id, channel and properties (JSON); other columns become properties.",
    ),
    "customers": (
        import_customers,
        "Customer profiles, matched by any identity; consent_<channel> columns (yes/no) set "
        "consent, other columns become custom attributes.",
    ),
    "orders": (
        import_orders,
        "Orders: one row per line item (order_id, identity, ordered_at, status, sku, quantity, "
        "unit_price, optional total/currency/channel/campaign), or JSON with an `items` list.",
    ),
    "products": (import_products, "Products: sku, name, category, price, cost, currency, active, in_stock."),
    "spend": (
        import_spend,
        "Marketing spend: channel, campaign, period_start, period_end, amount, currency.",
    ),
}


def _command(kind: str, importer: Callable[..., ImportReport]) -> Callable[..., None]:
    def command(
        file: FileArg,
        format: FormatOpt = None,
        map: MapOpt = None,
        rejections: RejectsOpt = None,
        json: JsonOpt = False,
        encoding: EncodingOpt = None,
        sheet: SheetOpt = None,
    ) -> None:
        _run(kind, importer, file, format, map, rejections, json, encoding, sheet)

    return command


for _kind, (_importer, _help) in IMPORTERS.items():
    app.command(_kind, help=_help)(_command(_kind, _importer))
