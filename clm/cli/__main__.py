"""`python -m clm.cli` runs the command line."""

from clm.cli import run

if __name__ == "__main__":  # not when something merely imports it (a multiprocessing child, say)
    run()
