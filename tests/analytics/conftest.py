"""Fixtures shared with the lifecycle tests: the hand-built shop."""

from tests.lifecycle.conftest import shop  # noqa: F401
