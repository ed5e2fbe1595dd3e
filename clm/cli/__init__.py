"""The `clm` command line: thin commands over the domain services.

Errors print as one line on stderr with a non-zero exit code, never a traceback.
Each command's module is imported only when that command runs (clm/cli/lazy.py), and commands
that need scikit-learn, SciPy or matplotlib import them inside the command: `clm --help` starts
in a fraction of a second, and every other command (a bulk import, say) in half the memory.
"""

from __future__ import annotations

import sys

from rich.console import Console

from clm.cli.context import app
from clm.core.errors import ClmError, UnusableInput

err = Console(stderr=True)


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
    except Exception as exc:
        if not _is_database_error(exc):
            raise
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        err.print(f"error: database: {first}", markup=False, highlight=False)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0


def _is_database_error(exc: Exception) -> bool:
    """Whether SQLAlchemy raised it (imported only if some command has loaded it already)."""
    if "sqlalchemy" not in sys.modules:
        return False
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(exc, SQLAlchemyError)


def run() -> None:
    sys.exit(main())


__all__ = ["app", "main", "run"]
