"""`clm serve`: run the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

from clm.cli.context import engine
from clm.store.engine import store_advice


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
        workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
    ) -> None:
        """Serve the API (docs at /docs, OpenAPI at /openapi.json)."""
        import os

        import uvicorn

        from clm.cli.context import database_url

        for advice in store_advice(engine()):  # (engine(): the schema is checked before requests)
            typer.echo(f"warning: {advice}", err=True)
        from clm.core.access_log import log_config

        os.environ["CLM_DATABASE_URL"] = database_url()
        uvicorn.run(
            "clm.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            log_config=log_config(),  # survey/unsubscribe tokens and email/phone look-ups masked
        )
