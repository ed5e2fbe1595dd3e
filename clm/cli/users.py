"""`clm users create|list|set-role|disable`: people who sign in to the web console."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from clm.cli.context import engine
from clm.cli.output import console, local, times_in

ROLE_HELP = "One of: admin, marketer, analyst, viewer (the same rights as API keys)."
app = typer.Typer(help="Manage console users (sign-in with email and password).", no_args_is_help=True)


@app.command()
def create(
    email: Annotated[str, typer.Argument(help="The address they sign in with.")],
    role: Annotated[str, typer.Option(help=ROLE_HELP)],
    name: Annotated[str | None, typer.Option(help="Display name, e.g. 张伟.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (one line).")
    ] = False,
) -> None:
    """Create a user; the password is asked twice (hidden) unless --password-stdin is given."""
    from clm.auth.users import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    user = create_user(engine(), email, role, password, name)
    console.print(f"created user {user.id} {user.email} ({user.role}); they sign in at /login")


@app.command("list")
def list_() -> None:
    """List users with their role, state and last sign-in."""
    from rich.table import Table

    from clm.auth.users import list_users

    table = Table("id", "email", "name", "role", "state", "last sign-in", caption=times_in())
    for u in list_users(engine()):
        state = "disabled" if u.disabled else ("locked" if u.locked_until else "active")
        last = f"{local(u.last_sign_in_at)}" if u.last_sign_in_at else "-"
        table.add_row(str(u.id), u.email, u.display_name, u.role, state, last)
    console.print(table)


@app.command("set-role")
def set_role_(
    email: Annotated[str, typer.Argument(help="The user's email.")],
    role: Annotated[str, typer.Argument(help=ROLE_HELP)],
) -> None:
    """Change a user's role; it applies from their next request."""
    from clm.auth.users import set_role

    user = set_role(engine(), email, role)
    console.print(f"{user.email} is now {user.role}")


@app.command()
def disable(email: Annotated[str, typer.Argument(help="The user's email.")]) -> None:
    """Stop a user from signing in; their open sessions end at once."""
    from clm.auth.users import disable_user

    user = disable_user(engine(), email)
    console.print(f"{user.email} is disabled")
