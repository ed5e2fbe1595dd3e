"""Documentation is tested: every CLI command, API operation and setting is documented."""

import re
from pathlib import Path
from typing import Any

import typer

from clm.api import create_app
from clm.cli import app

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _commands(group: Any, prefix: str = "clm") -> list[str]:
    found = []
    ctx = typer.Context(group)
    for name in group.list_commands(ctx):  # the root group loads its commands when asked
        command = group.get_command(ctx, name)
        path = f"{prefix} {name}"
        if hasattr(command, "commands"):  # a sub-group
            found += _commands(command, path)
        else:
            found.append(path)
    return found


def test_every_cli_command_is_documented():
    text = (DOCS / "cli.md").read_text()
    commands = _commands(typer.main.get_command(app))  # type: ignore[arg-type]
    assert len(commands) >= 12
    missing = [c for c in commands if f"`{c}" not in text]
    assert not missing, f"undocumented commands: {missing}"


def test_every_api_operation_is_documented():
    text = (DOCS / "api.md").read_text()
    spec = create_app(engine=object()).openapi()  # type: ignore[arg-type]
    missing = [
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method in operations
        if f"`{method.upper()} {path}`" not in text
    ]
    assert not missing, f"undocumented endpoints: {missing}"


def test_every_setting_is_documented():
    source = "\n".join(p.read_text() for p in Path(__file__).resolve().parents[1].glob("clm/**/*.py"))
    settings = set(re.findall(r"\"(CLM_[A-Z_]+)\"", source))
    assert settings, "no settings found"
    text = (DOCS / "settings.md").read_text()
    assert not [s for s in settings if f"`{s}`" not in text]
