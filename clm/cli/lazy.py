"""The root command group: every command with its summary, each module imported only when
one of its commands runs or shows its own help.

`clm --help` therefore loads Typer and Rich, not pandas, NumPy, SQLAlchemy or Alembic (1.3 s
became ~0.2 s: bench/README.md). A command added to a module's `app` or `register` needs a line
in `COMMANDS`; tests/test_cli_weight.py fails until the two agree.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

import typer
from typer import _click as click  # Typer's own copy of click: its groups take these types
from typer.core import TyperCommand, TyperGroup

# command name -> (module under clm.cli, the summary `clm --help` shows), in the order shown.
# A module either has `register(app)` (adding its commands to the root app) or an `app` of its
# own, mounted under the command's name.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "Build a realistic synthetic shop."),
    "import": ("imports", "Import CSV/TSV/JSON Lines files (optionally .gz)."),
    "customers": ("customers", "Look at and tidy customer profiles."),
    "stages": ("lifecycle", "Lifecycle stage models and stage assignment."),
    "kpi": ("lifecycle", "Lifecycle KPIs for a period."),
    "funnel": ("lifecycle", "Stage-to-stage conversion, median time in each stage, and the weakest link."),
    "cohorts": ("lifecycle", "Cohort retention: acquisition month × months since acquisition."),
    "retention": ("lifecycle", "Subscription retention (shifted-beta-geometric)."),
    "segments": ("segments", "Customer segments: dynamic (a condition) and static lists."),
    "clv": ("clv", "Predictive customer lifetime value (BG/NBD or Pareto/NBD + Gamma-Gamma)."),
    "churn": ("churn", "Churn early warning (流失预警): risk, reasons and the at-risk list."),
    "recommend": (
        "recommend",
        "Products for a customer with the reason for each, or evaluate / build / list the rules.",
    ),
    "loyalty": ("loyalty", "Loyalty programme: points balances and history, postings, tiers."),
    "surveys": ("feedback", "NPS, CSAT and feedback surveys: links, results, comments."),
    "tickets": ("feedback", "Customer-service tickets with SLA targets."),
    "tasks": ("feedback", "Follow-up tasks (回访) for people."),
    "journeys": ("journeys", "Marketing automation journeys."),
    "templates": ("journeys", "Message templates (email, SMS, webhook)."),
    "experiments": ("journeys", "A/B tests inside journeys."),
    "campaigns": ("journeys", "Campaign results."),
    "outbox": ("journeys", "Messages on their way out."),
    "serve": ("server", "Serve the API (docs at /docs, OpenAPI at /openapi.json)."),
    "worker": (
        "worker",
        "Run due jobs (stages and loyalty daily, segments hourly by default), files queued on the"
        " console's imports page, and the journeys.",
    ),
    "schedule": ("worker", "The periodic jobs the worker runs."),
    "apikey": ("apikeys", "Manage API keys (shown once, stored hashed)."),
    "users": ("users", "Manage console users (sign-in with email and password)."),
}


@cache
def module_commands(module: str) -> dict[str, click.Command]:
    """The click commands one CLI module defines, by name (imports the module)."""
    loaded: Any = importlib.import_module(f"clm.cli.{module}")
    holder = typer.Typer()
    if hasattr(loaded, "register"):
        loaded.register(holder)
    else:
        [name] = [name for name, (owner, _) in COMMANDS.items() if owner == module]
        holder.add_typer(loaded.app, name=name)
    return dict(typer.main.get_group(holder).commands)


class LazyGroup(TyperGroup):
    """A Typer group whose commands (beside those defined on the root app itself, `init`)
    come from `COMMANDS`: help lists their summaries, running one imports its module."""

    _summarising = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *(name for name in COMMANDS if name not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in COMMANDS:
            return command
        module, summary = COMMANDS[cmd_name]
        if self._summarising:  # listing the commands: their summaries, nothing imported
            return TyperCommand(cmd_name, help=summary, short_help=summary)
        return module_commands(module).get(cmd_name)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._summarising = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._summarising = False
