"""`clm segments …`: preview, create, list, members, export, rebuild, static lists."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine

from clm.cli.context import engine
from clm.cli.output import byte_progress, console, err_console, local, print_json, times_in
from clm.core.files import DataFile
from clm.customers.names import full_name
from clm.segments.lists import import_list
from clm.segments.service import (
    Build,
    MemberRow,
    create_segment,
    delete_segment,
    export_members,
    get_segment,
    install_builtins,
    list_segments,
    members,
    preview,
    rebuild_segments,
    update_segment,
)

app = typer.Typer(help="Customer segments: dynamic (a condition) and static lists.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (the API's shape).")]
WhereOpt = Annotated[
    str,
    typer.Option("--where", help="The condition, e.g. 'stage = \"retention\" and not purchased(last 60d)'."),
]


def _members_table(title: str, rows: list[MemberRow]) -> Table:
    table = Table("id", "external id", "email", "name", "city", "entered", title=title, caption=times_in())
    for m in rows:
        name = full_name(m.first_name, m.last_name)  # 黄强, Ann Lee
        entered = f"{local(m.entered_at)}" if m.entered_at else ""
        table.add_row(str(m.customer_id), m.external_id or "", m.email or "", name, m.city or "", entered)
    return table


def _show_build(build: Build) -> None:
    console.print(
        f"[bold]{build.name}[/]: {build.members:,} members "
        f"([green]+{build.entered:,}[/] entered, [red]-{build.exited:,}[/] left)"
    )


@app.command("preview")
def preview_command(
    where: WhereOpt,
    sample: Annotated[int, typer.Option(help="How many to list.")] = 10,
    json: JsonOpt = False,
) -> None:
    """Count and sample the customers a condition selects now, without saving it."""
    result = preview(engine(), where, sample=sample)
    if json:
        print_json(result)
        return
    console.print(f"[bold]{result.count:,}[/] customers match  {result.where}")
    console.print(f"reads: {', '.join(result.depends) or 'profile only'}")
    if result.sample:
        console.print(_members_table("sample", result.sample))


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Letters, digits, _ and -.")],
    where: Annotated[str | None, typer.Option("--where", help="The condition (a dynamic segment).")] = None,
    description: Annotated[str, typer.Option(help="What the segment is for.")] = "",
    static: Annotated[
        bool, typer.Option("--static", help="A static list (add members with `import`).")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Save a dynamic segment (built at once: who is in it now) or an empty static list."""
    segment, build = create_segment(engine(), name, description=description, where=where, static=static)
    if json:
        print_json({"segment": segment, "build": build})
        return
    _show_build(build)
    if segment.where:
        console.print(f"condition: {segment.where}")


@app.command("update")
def update(
    name: str,
    where: Annotated[str | None, typer.Option("--where", help="A new condition (rebuilds at once).")] = None,
    description: Annotated[str | None, typer.Option(help="A new description.")] = None,
    json: JsonOpt = False,
) -> None:
    """Change a segment's condition and/or description."""
    segment, build = update_segment(engine(), name, description=description, where=where)
    if json:
        print_json({"segment": segment, "build": build})
        return
    if build:
        _show_build(build)
    console.print(f"{segment.name}: {segment.where or segment.description}")


@app.command("import")
def import_command(
    name: Annotated[str, typer.Argument(help="The static list (created if missing).")],
    file: Annotated[Path, typer.Argument(help="CSV/JSONL with customer_id, email, phone or external_id.")],
    rejections: Annotated[Path | None, typer.Option(help="Where to write rejected rows (CSV).")] = None,
    json: JsonOpt = False,
) -> None:
    """Add the customers a file names to a static list; rows naming nobody are reported one by one."""
    data = DataFile(file)
    eng = engine()
    path = rejections or Path.cwd() / f"{file.name}.rejections.csv"
    with byte_progress(f"adding to {name}", data.size, enabled=not json) as progress:
        report = import_list(eng, name, data, rejections_path=path, progress=progress)
    if json:
        print_json(report.as_dict())
        raise typer.Exit(report.exit_code)
    console.print(
        f"{report.rows:,} rows: [green]{report.accepted:,} added[/], "
        f"{report.duplicates:,} already in the list, [red]{report.rejected:,} rejected[/]"
    )
    for r in report.rejections:
        console.print(f"  line {r.line}: {r.reason}")
    if report.rejections_file:
        console.print(f"every rejected row is in {report.rejections_file}")
    raise typer.Exit(report.exit_code)


@app.command("list")
def list_command(json: JsonOpt = False) -> None:
    """Every segment with its size."""
    rows = list_segments(engine())
    if json:
        print_json(rows)
        return
    table = Table(
        "name", "kind", "members", "built", "condition / description", title="segments", caption=times_in()
    )
    for s in rows:
        built = f"{local(s.built_at)}" if s.built_at else "-"
        table.add_row(s.name, s.kind, f"{s.members:,}", built, s.where or s.description)
    console.print(table)


@app.command("show")
def show(name: str, json: JsonOpt = False) -> None:
    """One segment's definition, what it reads and its size."""
    segment = get_segment(engine(), name)
    if json:
        print_json(segment)
        return
    console.print(f"[bold]{segment.name}[/] ({segment.kind}{', built-in' if segment.builtin else ''})")
    if segment.description:
        console.print(segment.description)
    if segment.where:
        console.print(f"condition: {segment.where}")
        console.print(f"reads: {', '.join(segment.depends)}")
    console.print(f"members: {segment.members:,}")


@app.command("members")
def members_command(
    name: str,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 20,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    json: JsonOpt = False,
) -> None:
    """The segment's current members, page by page."""
    total, rows = members(engine(), name, limit=limit, offset=offset)
    if json:
        print_json({"total": total, "limit": limit, "offset": offset, "members": rows})
        return
    console.print(_members_table(f"{name}: {total:,} members (from #{offset + 1})", rows))


def _export_encoding(name: str | None) -> str:
    """The export's encoding; a name CLM cannot write is a usage error (exit 2)."""
    from clm.core.errors import InvalidInput
    from clm.core.exports import export_encoding

    try:
        return export_encoding(name)
    except InvalidInput as exc:
        raise typer.BadParameter(exc.reason, param_hint="--encoding")


@app.command("export")
def export(
    name: str,
    file: Annotated[Path, typer.Argument(help="CSV file to write.")],
    encoding: Annotated[
        str | None,
        typer.Option(
            help="utf-8-sig (UTF-8 that Excel opens with Chinese), gb18030 or utf-8 "
            "(default: $CLM_EXPORT_ENCODING or utf-8-sig)."
        ),
    ] = None,
) -> None:
    """Write every current member to a CSV file."""
    codec = _export_encoding(encoding)
    eng = engine()
    total = get_segment(eng, name).members
    with Progress(
        TextColumn("[bold]exporting"), BarColumn(), MofNCompleteColumn(), console=err_console
    ) as progress:
        task = progress.add_task("export", total=total or None)
        written = export_members(
            eng, name, file, progress=lambda n: progress.update(task, completed=n), encoding=codec
        )
        progress.update(task, completed=written)
    console.print(f"{written:,} members of {name} written to {file}")


@app.command("rebuild")
def rebuild(
    names: Annotated[list[str] | None, typer.Argument(help="Segments to rebuild (default: all).")] = None,
    json: JsonOpt = False,
) -> None:
    """Re-evaluate dynamic segments in full: what the scheduled job runs, so that time-based
    conditions (`last 14d`, `days_since_…`) stay true without new events."""
    eng = engine()
    with Progress(
        TextColumn("[bold]rebuilding {task.fields[current]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=json,
    ) as progress:
        count = len(names) if names else sum(1 for s in list_segments(eng) if s.kind == "dynamic")
        task = progress.add_task("rebuild", total=count, current="")
        builds = rebuild_segments(
            eng, names or None, progress=lambda name: progress.update(task, advance=1, current=name)
        )
    if json:
        print_json(builds)
        return
    for build in builds:
        _show_build(build)


@app.command("delete")
def delete(name: str) -> None:
    """Delete a segment and its membership history."""
    delete_segment(engine(), name)
    console.print(f"segment {name} deleted")


@app.command("builtins")
def builtins() -> None:
    """Create the built-in segments that are missing (active users, potential customers, churn
    risk, age bands, tier-1 cities, RFM groups)."""
    added = install_builtins(engine())
    console.print(f"built-in segments added: {', '.join(added) if added else 'none (all present)'}")


def refresh_segments(eng: Engine, kinds: set[str], quiet: bool = False) -> None:
    """After a command changed derived data (stages, scores): rebuild the segments that read it."""
    builds = rebuild_segments(eng, depends=kinds)
    changed = [b for b in builds if b.entered or b.exited]
    if builds and not quiet:
        moved = sum(b.entered + b.exited for b in changed)
        console.print(f"segments re-evaluated: {len(builds)}, {moved:,} memberships changed")


def sizes_chart(eng: Engine) -> Table:
    """Segment sizes as bars (what `clm demo` shows)."""
    rows = [s for s in list_segments(eng)]
    top = max((s.members for s in rows), default=0) or 1
    table = Table("segment", "members", "", title="segments", show_edge=False)
    for s in rows:
        table.add_row(s.name, f"{s.members:,}", "█" * max(0, round(s.members / top * 40)))
    return table
