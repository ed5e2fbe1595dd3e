"""`python -m clm.cli` runs the command line."""

from clm.cli import run

if __name__ == "__main__":  # not when a child process started by `spawn` imports this module
    run()
