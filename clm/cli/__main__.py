"""`python -m clm.cli` runs the command line."""

from clm.cli import run

run()
