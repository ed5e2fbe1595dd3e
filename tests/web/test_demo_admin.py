"""The first `clm demo` in a store makes a console admin and ends by saying where the console is
and how to sign in; the password it prints works."""

import re

from clm.auth.users import list_users, sign_in
from clm.cli import main


def test_the_demo_prints_a_working_sign_in(engine, db_url, capsys):
    assert main(["--db", db_url, "demo", "--customers", "300", "--seed", "5", "--no-history"]) == 0
    out = capsys.readouterr().out
    assert "clm serve" in out and "http://127.0.0.1:8000/" in out
    found = re.search(r"sign in as (\S+) with password (\S+)", out)
    assert found, out[-500:]
    user = sign_in(engine, found.group(1), found.group(2))
    assert (user.email, user.role) == ("admin@demo.clm", "admin")
    assert [u.email for u in list_users(engine)] == ["admin@demo.clm"]
