"""The shell examples in README.md and docs/*.md work: every `clm` line names a real command with
options it accepts, every file it reads is there or one the reader brings, and the lines that
name a customer or a ticket run against a demo store (customers by id: `clm demo` numbers its
customers 1, 2, …; emails are drawn at random, so an email in an example finds nobody)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer

from clm.cli import app, main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# files the examples read that the reader brings (their own data), looked for nowhere
READERS_FILES = {
    "my-events.csv",
    "events.csv",
    "crm-export.csv",
    "orders.jsonl",
    "catalogue.tsv",
    "spend.csv",
    "vip-list.csv",
    "telco.csv",
    "cart.yaml",
    "vip.yaml",
    "会员.csv",
    "订单.xlsx",
    "export.csv",
}
# options that name a file an example writes
OUTPUTS = {"png", "card", "out"}
FILE_NAME = r"[\w./-]+\.(csv|tsv|txt|jsonl|ndjson|json|yaml|yml|gz|xlsx)"
# commands that name a customer (parameter names of the CLI) or a ticket
CUSTOMER_PARAMS = {"who", "target", "customer_id", "survivor", "others"}
RECOMMEND_ACTIONS = {"evaluate", "build", "rules"}


@dataclass(frozen=True)
class Example:
    page: str
    line: int
    block: int  # examples of one code block run in order
    argv: tuple[str, ...]  # after `clm`

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: clm {shlex.join(self.argv)}"


def _examples() -> list[Example]:
    found = []
    for page in PAGES:
        in_block, block, pending = False, 0, ""
        for number, raw in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if raw.startswith("```"):
                in_block, block = not in_block, block + 1
                continue
            if not in_block:
                continue
            line = f"{pending} {raw.strip()}" if pending else raw.strip()
            if line.endswith("\\"):
                pending = line[:-1]
                continue
            pending = ""
            line = line.removeprefix("$ ")
            if not line.startswith("clm "):
                continue
            for part in line.split("&&"):
                # a synopsis's optional parts ([--horizon 90]) are written as they would be typed
                words = [w.strip("[]") for w in shlex.split(part, comments=True)]
                # a trailing `...` stands for the options written out in the example before it
                words = words[:-1] if words[-1] == "..." else words
                found.append(Example(page.name, number, block, tuple(w for w in words[1:] if w)))
    return found


EXAMPLES = _examples()


def _parse(argv: tuple[str, ...]) -> tuple[list[str], dict[str, Any]]:
    """The command path and its parameters, as the CLI parses them (nothing runs)."""
    args = list(argv)
    while args and args[0] == "--db":
        args = args[2:]
    command: Any = typer.main.get_command(app)
    path = ["clm"]
    while hasattr(command, "list_commands"):
        assert args, f"`{' '.join(path)}` needs a command"
        name = args.pop(0)
        sub = command.get_command(typer.Context(command), name)
        assert sub is not None, f"no command `{' '.join(path)} {name}`"
        command, path = sub, [*path, name]
    ctx = command.make_context(" ".join(path), args)
    return path, dict(ctx.params)


def test_the_docs_have_examples():
    assert len(EXAMPLES) > 80
    assert {e.page for e in EXAMPLES} >= {"README.md", "feedback.md", "journeys.md", "loyalty.md", "value.md"}


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_every_example_is_a_command_with_options_it_accepts(example: Example):
    _parse(example.argv)


def _names_a_customer_or_ticket(example: Example) -> bool:
    path, params = _parse(example.argv)
    if path[1:] == ["recommend"] and params["target"] in RECOMMEND_ACTIONS:
        return False
    return bool(CUSTOMER_PARAMS & set(params)) or "ticket_id" in params


def test_every_file_an_example_reads_is_there_or_the_readers_own():
    for example in EXAMPLES:
        path, params = _parse(example.argv)
        for name, value in params.items():
            if name in OUTPUTS or path[1:] == ["segments", "export"]:
                continue
            if isinstance(value, Path) or (isinstance(value, str) and re.fullmatch(FILE_NAME, value)):
                assert str(value) in READERS_FILES or (ROOT / value).is_file(), (
                    f"{example}: reads {value}, which is neither in the repository (give its path from "
                    "the root) nor one of the reader's own files (READERS_FILES)"
                )


def test_examples_that_name_customers_or_tickets_run_on_the_demo(engine, db_url, tmp_path, monkeypatch):
    """Each example naming a customer or a ticket runs against a 1,000-customer demo, after the
    lines before it in its block that make what it names (`surveys create`, `tickets open`,
    `loyalty accrue`)."""
    from clm.demo.service import DemoConfig, build_demo
    from clm.feedback.service import install_builtin_surveys

    build_demo(engine, DemoConfig(customers=1_000, seed=42, end=datetime(2026, 11, 30, tzinfo=UTC)))
    install_builtin_surveys(engine)  # as `clm init` and `clm demo` do
    monkeypatch.chdir(tmp_path)
    naming = [e for e in EXAMPLES if _names_a_customer_or_ticket(e)]
    assert len(naming) >= 10
    setup = [
        e
        for e in EXAMPLES
        if e.argv[:2] in {("surveys", "create"), ("tickets", "open"), ("loyalty", "accrue")}
        and any(n.page == e.page and n.block == e.block and n.line > e.line for n in naming)
    ]
    for example in sorted({*setup, *naming}, key=lambda e: (e.page, e.line)):
        code = main(["--db", db_url, *example.argv])
        assert code == 0, f"{example} failed (exit code {code})"
