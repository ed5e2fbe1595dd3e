"""Run a generator in a child process and iterate over what it yields, here.

Why: Python runs one thread of a process at a time. A bulk import reads and checks a file
(pandas, NumPy and a good deal of Python) while it stores the previous chunk; in threads of
one process the two took turns at the interpreter lock, so a 2-core machine worked at about
1.3 cores. A reader in a process of its own runs beside the writer for real.

The child is a fresh interpreter that imports only what the generator needs: not a fork (the
parent may have threads, a progress bar or a pool of connections, whose locks a forked child
would inherit), and not multiprocessing's `spawn`, which would import the parent's main module
again (the whole command line) and fails in a script without a `__main__` guard. The
generator and its arguments go over as a pickle: a module-level function and plain values.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection
from typing import Any, TypeVar

T = TypeVar("T")

_ITEM, _END, _ERROR = "item", "end", "error"
_POLL_SECONDS = 0.5  # how often a wait for the next item checks that the child is still alive


# the child's pipe is handed over with `pass_fds`, which only POSIX systems have
AVAILABLE = os.name == "posix"


class ChildFailed(RuntimeError):
    """The child process ended without saying why (killed, out of memory, …)."""


def iterate_apart(produce: Callable[..., Iterable[T]], *args: Any) -> Iterator[T]:
    """Iterate over `produce(*args)`, run in a child process. The child works one item ahead:
    it makes the next while this process uses the last, then waits until it is taken (a pipe,
    so nothing piles up in memory). An exception in the child is raised here; leaving the
    loop early (or failing in it) stops the child."""
    # the import path first, on its own: the child needs it to find `produce`'s module
    job = pickle.dumps(sys.path) + pickle.dumps((produce, args))  # what cannot be pickled fails here
    read_end, write_end = os.pipe()
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", f"from {__name__} import serve; serve({write_end})"],
            stdin=subprocess.PIPE,
            pass_fds=[write_end],
        )
    finally:
        os.close(write_end)  # the child's copy is the only one left: its end reads as the end here
    receiver = Connection(read_end, writable=False)
    try:
        assert child.stdin is not None
        with child.stdin:
            child.stdin.write(job)
        while True:
            kind, value = _next(receiver, child)
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value
    finally:
        if child.poll() is None:
            child.terminate()
        child.wait()
        receiver.close()


def _next(receiver: Connection, child: subprocess.Popen[bytes]) -> tuple[str, Any]:
    while not receiver.poll(_POLL_SECONDS):
        if child.poll() is not None and not receiver.poll(0):
            break
    try:
        return receiver.recv()
    except EOFError:
        raise ChildFailed(f"the reading process ended unexpectedly (exit code {child.wait()})") from None


def serve(write_end: int) -> None:
    """The child's side: read the job from stdin, send every item, then the end or the error
    that stopped it."""
    sender = Connection(write_end, readable=False)
    try:
        try:
            sys.path[:] = pickle.load(sys.stdin.buffer)
            produce, args = pickle.load(sys.stdin.buffer)
            for item in produce(*args):
                sender.send((_ITEM, item))
                del item  # not held while the next one is made
            sender.send((_END, None))
        except BaseException as exc:  # KeyboardInterrupt too: the parent decides what to do
            sender.send((_ERROR, _picklable(exc)))
    except (BrokenPipeError, ConnectionResetError):  # the parent has stopped listening
        pass
    finally:
        sender.close()


def _picklable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling, else one that carries its text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return ChildFailed(f"{type(exc).__name__}: {exc}")
    return exc
