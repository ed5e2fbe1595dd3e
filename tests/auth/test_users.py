"""Console users: Argon2 passwords, lock-out after repeated failures, audit of every sign-in,
and the `clm users` commands."""

import io
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from clm.auth.tables import audit_log, users
from clm.auth.users import (
    LOCK_MINUTES,
    MAX_FAILURES,
    SignInRefused,
    change_password,
    create_user,
    disable_user,
    find_user,
    server_secret,
    set_role,
    sign_in,
)
from clm.cli import main
from clm.core.errors import Conflict, Forbidden, InvalidInput
from clm.core.timeutil import utcnow


def audit(engine, action):
    with engine.connect() as conn:
        return list(conn.execute(select(audit_log).where(audit_log.c.action == action)).mappings())


def test_password_is_stored_as_argon2_and_signs_in(engine):
    user = create_user(engine, " Wei@Example.COM ", "marketer", "correct horse", "张伟")
    assert (user.email, user.display_name, user.role) == ("wei@example.com", "张伟", "marketer")
    with engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    signed = sign_in(engine, "WEI@example.com", "correct horse", source="127.0.0.1")
    assert signed.id == user.id and signed.last_sign_in_at is not None
    assert signed.can("write") and not signed.can("admin")
    [row] = audit(engine, "user.sign_in")
    assert row["actor"] == f"user:{user.id}:wei@example.com" and row["details"]["source"] == "127.0.0.1"


def test_production_hash_costs_meet_the_owasp_minimum():
    from clm.auth import users as module

    # OWASP's password storage cheat sheet: Argon2id with at least 19 MiB of memory and 2 passes
    assert module._hasher.type.name == "ID"
    assert module._hasher.memory_cost >= 19 * 1024 and module._hasher.time_cost >= 2


def test_bad_input_is_refused_clearly(engine):
    with pytest.raises(InvalidInput, match="at least 8"):
        create_user(engine, "a@b.co", "viewer", "short")
    with pytest.raises(InvalidInput, match="unknown role"):
        create_user(engine, "a@b.co", "boss", "long enough")
    with pytest.raises(InvalidInput, match="not an email"):
        create_user(engine, "nobody", "viewer", "long enough")
    create_user(engine, "a@b.co", "viewer", "long enough")
    with pytest.raises(Conflict):
        create_user(engine, "A@b.co", "admin", "long enough")


def test_wrong_passwords_lock_the_account_then_it_unlocks(engine):
    user = create_user(engine, "ana@example.com", "analyst", "right password")
    for attempt in range(1, MAX_FAILURES):
        with pytest.raises(SignInRefused) as refused:
            sign_in(engine, "ana@example.com", f"wrong {attempt}")
        assert refused.value.reason == "invalid"
    with pytest.raises(SignInRefused) as refused:
        sign_in(engine, "ana@example.com", "wrong again")
    assert refused.value.reason == "locked"
    assert refused.value.locked_until is not None
    minutes = (refused.value.locked_until - utcnow()).total_seconds() / 60
    assert LOCK_MINUTES - 1 < minutes <= LOCK_MINUTES
    # locked: even the right password is refused, and that is recorded too
    with pytest.raises(SignInRefused) as refused:
        sign_in(engine, "ana@example.com", "right password")
    assert refused.value.reason == "locked"
    failures = audit(engine, "user.sign_in_failed")
    assert len(failures) == MAX_FAILURES + 1
    assert [f["details"]["reason"] for f in failures][-1] == "locked"
    # once the lock has run out, the right password works and the count starts again
    with engine.begin() as conn:
        conn.execute(update(users).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert sign_in(engine, "ana@example.com", "right password").id == user.id
    with engine.connect() as conn:
        assert conn.execute(select(users.c.failed_attempts, users.c.locked_until)).one() == (0, None)


def test_unknown_email_and_disabled_user_are_refused_and_recorded(engine):
    with pytest.raises(SignInRefused) as refused:
        sign_in(engine, "ghost@example.com", "whatever it is")
    assert refused.value.reason == "invalid"
    create_user(engine, "vic@example.com", "viewer", "viewer password")
    before = find_user(engine, "vic@example.com").session_version
    disabled = disable_user(engine, "vic@example.com")
    assert disabled.disabled and disabled.session_version == before + 1
    with pytest.raises(SignInRefused) as refused:
        sign_in(engine, "vic@example.com", "viewer password")
    assert refused.value.reason == "disabled"
    reasons = [r["details"]["reason"] for r in audit(engine, "user.sign_in_failed")]
    assert reasons == ["invalid", "disabled"]


def test_change_password_asks_for_the_current_one_and_ends_other_sessions(engine):
    user = create_user(engine, "mark@example.com", "marketer", "first password")
    with pytest.raises(Forbidden):
        change_password(engine, user.id, "not it", "second password")
    changed = change_password(engine, user.id, "first password", "second password")
    assert changed.session_version == user.session_version + 1
    with pytest.raises(SignInRefused):
        sign_in(engine, "mark@example.com", "first password")
    assert sign_in(engine, "mark@example.com", "second password").id == user.id


def test_set_role(engine):
    create_user(engine, "x@example.com", "viewer", "x password")
    assert set_role(engine, "x@example.com", "admin").role == "admin"
    assert audit(engine, "user.set_role")[0]["details"] == {"from": "viewer", "to": "admin"}


def test_server_secret_is_made_once_and_kept(engine):
    first = server_secret(engine, "session")
    assert len(first) >= 48 and server_secret(engine, "session") == first
    assert server_secret(engine, "other") != first


def test_users_commands(engine, db_url, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-password\n"))
    assert (
        main(
            [
                "--db",
                db_url,
                "users",
                "create",
                "li@example.com",
                "--role",
                "analyst",
                "--name",
                "李娜",
                "--password-stdin",
            ]
        )
        == 0
    )
    assert "created user" in capsys.readouterr().out
    assert sign_in(engine, "li@example.com", "s3cret-password").display_name == "李娜"
    assert main(["--db", db_url, "users", "set-role", "li@example.com", "marketer"]) == 0
    assert main(["--db", db_url, "users", "list"]) == 0
    listing = capsys.readouterr().out
    assert "li@example.com" in listing and "marketer" in listing and "s3cret" not in listing
    assert main(["--db", db_url, "users", "disable", "li@example.com"]) == 0
    assert find_user(engine, "li@example.com").disabled
    assert main(["--db", db_url, "users", "set-role", "li@example.com", "boss"]) == 1
    assert "unknown role" in capsys.readouterr().err
    assert main(["--db", db_url, "users", "disable", "nobody@example.com"]) == 1
