"""The CLI loads the heavy libraries only for the commands that use them: `clm --help` and
the help of a command start quickly (see bench/README.md for the figures)."""

import json
import subprocess
import sys

import pytest

# what `clm --help` must not load: numerical and data libraries, the database toolkit, the
# migrations, templating, the web framework
HEAVY = (
    "numpy",
    "pandas",
    "sqlalchemy",
    "alembic",
    "jinja2",
    "sklearn",
    "scipy",
    "matplotlib",
    "fastapi",
    "pydantic",
)


def _loaded_after(*argv: str) -> tuple[list[str], str]:
    """Run `clm argv...` in a fresh interpreter; the heavy modules it imported, and its output."""
    probe = (
        "import io, json, sys, contextlib\n"
        "from clm.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    code = main({list(argv)!r})\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "print(json.dumps({'code': code, 'heavy': heavy, 'out': out.getvalue()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["code"] == 0, done.stderr
    return result["heavy"], result["out"]


def test_clm_help_loads_none_of_the_heavy_libraries():
    heavy, out = _loaded_after("--help")
    assert heavy == []
    for command in ("init", "demo", "import", "customers", "churn", "journeys", "serve", "worker"):
        assert f" {command} " in out  # every command is still listed, with its summary
    assert "Build a realistic synthetic shop" in out


def test_loading_the_cli_leaves_scikit_learn_scipy_and_matplotlib_alone():
    heavy, _ = _loaded_after("apikey", "--help")
    assert not {"sklearn", "scipy", "matplotlib"} & set(heavy)


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["demo", "--help"], "--customers"),
        (["import", "events", "--help"], "--format"),
        (["churn", "--help"], "at-risk"),
        (["journeys", "import", "--help"], "--enable"),
        (["clv", "fit", "--help"], "--transactions"),
        (["kpi", "--help"], "--from"),
        (["serve", "--help"], "--port"),
        (["schedule", "--help"], "set"),
        (["init", "--help"], "schema"),
    ],
)
def test_every_command_still_has_its_help(argv, shown):
    _, out = _loaded_after(*argv)
    assert shown in out


def test_the_listed_commands_are_the_commands_the_modules_define():
    """`clm --help` lists commands from a table (clm/cli/lazy.py): it names each module's every
    command and nothing else, and each summary begins the command's own help."""
    import importlib
    import pkgutil

    import clm.cli
    from clm.cli.lazy import COMMANDS, module_commands

    with_commands = {
        info.name
        for info in pkgutil.iter_modules(clm.cli.__path__)
        if info.name not in ("context", "__main__")
        and {"app", "register"} & set(vars(importlib.import_module(f"clm.cli.{info.name}")))
    }
    assert with_commands == {module for module, _ in COMMANDS.values()}
    defined = {name: cmd for module, _ in COMMANDS.values() for name, cmd in module_commands(module).items()}
    assert sorted(defined) == sorted(COMMANDS)
    for name, (_, summary) in COMMANDS.items():
        own = " ".join((defined[name].help or "").split())
        assert own.startswith(summary.rstrip(".")), (name, summary, own)
