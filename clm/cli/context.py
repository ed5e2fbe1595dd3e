"""The root Typer app and the shared `--db` option: every command gets its engine from here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from clm.cli.lazy import LazyGroup
from clm.core.errors import ClmError, NotFound
from clm.core.settings import settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

# The store, migrations and importer are imported inside the functions that use them: `clm --help`
# and each command's help then start without SQLAlchemy, Alembic or pandas (clm/cli/lazy.py).
app = typer.Typer(
    cls=LazyGroup,
    help="CLM: Customer Lifecycle Management. Collect every customer touch, see lifecycle stages, "
    "act, measure.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_state: dict[str, str | None] = {"db": None}


@app.callback()
def root(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL (default: $CLM_DATABASE_URL or sqlite:///./clm.db).",
            show_default=False,
        ),
    ] = None,
) -> None:
    _state["db"] = db


def database_url() -> str:
    return _state["db"] or settings().database_url


def engine() -> Engine:
    """The engine for this command. A brand-new database gets its schema; an old one must be
    upgraded on purpose with `clm init`."""
    from clm.migrations import current_revision, head_revision
    from clm.migrations import upgrade as upgrade_schema
    from clm.store.engine import make_engine

    eng = make_engine(database_url())
    revision, head = current_revision(eng), head_revision()
    if revision is None:
        upgrade_schema(eng)
        _first_segments(eng)
    elif revision != head:
        raise ClmError(
            f"the database schema is at revision {revision}, this clm needs {head}: run `clm init`"
        )
    _days_in_store_zone(eng)
    return eng


def _days_in_store_zone(eng: Engine) -> None:
    """A changed CLM_DEFAULT_TIMEZONE: the order summary is cut into the new zone's days first."""
    from clm.commerce.order_days import ensure_order_days_zone
    from clm.core.timeutil import store_zone

    before = ensure_order_days_zone(eng)
    if before:  # not for a new store, whose summary simply starts in the zone
        typer.echo(f"order summary rebuilt in the time zone {store_zone().key} (was {before})", err=True)


@app.command()
def init() -> None:
    """Create the database schema, or upgrade it to the current version."""
    from clm.events.importer import recover_cut_short_load
    from clm.migrations import current_revision, load_metadata
    from clm.migrations import upgrade as upgrade_schema
    from clm.store.bulk import restore_set_aside
    from clm.store.engine import make_engine, store_advice

    eng = make_engine(database_url())
    before = current_revision(eng)
    upgrade_schema(eng)
    after = current_revision(eng)
    _first_segments(eng)
    _days_in_store_zone(eng)
    # a bulk load killed before it built its indexes again left them out
    rebuilt = recover_cut_short_load(eng) + restore_set_aside(eng, list(load_metadata().sorted_tables))
    if rebuilt:
        typer.echo(f"built missing indexes and keys: {', '.join(rebuilt)}")
    for advice in store_advice(eng):
        typer.echo(f"warning: {advice}", err=True)
    where = eng.url.render_as_string(hide_password=True)
    if before == after:
        typer.echo(f"schema of {where} is up to date (revision {after})")
    else:
        typer.echo(f"schema of {where} upgraded from {before or 'nothing'} to {after}")


def _first_segments(eng: Engine) -> None:
    """A store without any segment gets the built-in ones (a user's deletions are respected
    later), and the built-in surveys (nps, support-csat, feedback) that are missing."""
    from clm.feedback.service import install_builtin_surveys
    from clm.segments.service import install_builtins, list_segments

    if not list_segments(eng):
        install_builtins(eng)
    install_builtin_surveys(eng)


def customer_id(eng: Engine, who: str) -> int:
    """A customer by CLM id, email or external id."""
    from clm.customers.identities import normalize_identity
    from clm.customers.service import find_customers

    if who.isdigit():
        return int(who)
    kind = "email" if "@" in who else "external_id"
    found = find_customers(eng, {kind: normalize_identity(kind, who)})
    if not found:
        raise NotFound(f"no customer with {kind.replace('_', ' ')} {who}")
    return found[0].id
