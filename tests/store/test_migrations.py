"""The schema: migrations and models agree, and upgrading is idempotent."""

from clm.migrations import current_revision, head_revision, schema_diff, upgrade


def test_models_and_migrations_agree(engine):
    assert current_revision(engine) == head_revision()
    assert schema_diff(engine) == []


def test_upgrade_twice_changes_nothing(engine):
    upgrade(engine)
    assert current_revision(engine) == head_revision()
