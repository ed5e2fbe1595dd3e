"""Memory a finished phase freed goes back to the operating system."""

import sys

import pytest

from clm.core.memory import release_freed_memory


def _rss_mb() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS"))
    return int(line.split()[1]) // 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and uses glibc")
def test_freed_chunks_below_live_ones_are_returned():
    chunks = [bytearray(2000) for _ in range(50_000)]  # ~100 MB from malloc, not Python's arenas
    keep = bytearray(2000)  # allocated above them: the heap cannot shrink from its top
    del chunks
    held = _rss_mb()
    release_freed_memory()
    assert held - _rss_mb() > 50
    assert len(keep) == 2000
