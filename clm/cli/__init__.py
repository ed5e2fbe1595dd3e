"""The `clm` command line: thin commands over the domain services.

Errors print as one line on stderr with a non-zero exit code, never a traceback.
Commands that need scikit-learn, SciPy or matplotlib import them inside the command, so that
every other command (a bulk import, say) starts in half the memory.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from clm.cli import (
    apikeys,
    churn,
    clv,
    customers,
    demo,
    feedback,
    imports,
    journeys,
    lifecycle,
    loyalty,
    recommend,
    segments,
    server,
    users,
    worker,
)
from clm.cli.context import app
from clm.core.errors import ClmError, UnusableInput

err = Console(stderr=True)

app.add_typer(imports.app, name="import")
app.add_typer(apikeys.app, name="apikey")
app.add_typer(users.app, name="users")
app.add_typer(customers.app, name="customers")
app.add_typer(clv.app, name="clv")
app.add_typer(churn.app, name="churn")
app.add_typer(segments.app, name="segments")
app.add_typer(loyalty.app, name="loyalty")
feedback.register(app)
journeys.register(app)
demo.register(app)
lifecycle.register(app)
recommend.register(app)
server.register(app)
worker.register(app)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the process exit code.

    Typer reports usage errors itself (exit 2); our own errors become one line on stderr.
    """
    try:
        app(args=argv, prog_name="clm")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except UnusableInput as exc:
        err.print(f"error: {exc.message}", markup=False, highlight=False)
        return 2
    except ClmError as exc:
        err.print(f"error: {exc.message}", markup=False, highlight=False)
        return 1
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        err.print(f"error: database: {first}", markup=False, highlight=False)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0


def run() -> None:
    sys.exit(main())


__all__ = ["app", "main", "run", "typer"]
