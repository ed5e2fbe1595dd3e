"""`clm apikey create|list|revoke`: keys for the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from clm.auth.service import ROLES, create_api_key, list_api_keys, revoke_api_key
from clm.cli.context import engine
from clm.cli.output import console, err_console, local, times_in

app = typer.Typer(help="Manage API keys (shown once, stored hashed).", no_args_is_help=True)


@app.command()
def create(
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    name: Annotated[str, typer.Option(help="Who or what uses the key, e.g. 'web shop'.")],
) -> None:
    """Create a key; it is printed once on stdout and cannot be shown again."""
    key, token = create_api_key(engine(), name, role)
    err_console.print(
        f"created API key {key.id} ({key.role}) for {key.name!r}; keep it safe, it is shown only once:"
    )
    print(token)


@app.command("list")
def list_() -> None:
    """List keys (without secrets)."""
    table = Table("id", "name", "role", "created", "last used", "revoked", caption=times_in())
    for k in list_api_keys(engine()):
        table.add_row(
            str(k.id),
            k.name,
            k.role,
            f"{local(k.created_at)}",
            f"{local(k.last_used_at)}" if k.last_used_at else "-",
            f"{local(k.revoked_at)}" if k.revoked_at else "",
        )
    console.print(table)


@app.command()
def revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (see `clm apikey list`).")],
) -> None:
    """Revoke a key: it stops working at once."""
    revoke_api_key(engine(), key_id)
    console.print(f"API key {key_id} revoked")
