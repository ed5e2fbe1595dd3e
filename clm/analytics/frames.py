"""Query results as DataFrames without a Python object per value of a million rows."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Executable

SLICE = 50_000


def read_frame(
    conn: Connection,
    query: Executable,
    params: dict[str, Any] | None = None,
    *,
    numeric: Collection[str] = (),
) -> pd.DataFrame:
    """The rows of `query` as a DataFrame, with the `numeric` columns as floats.

    Built a slice at a time from the driver's plain tuples: no SQLAlchemy Row per record (pandas
    probes each Row for attributes, which costs more than the query), and only one slice's Python
    objects alive at once. When every column is numeric a slice becomes one float array.
    The driver still receives the whole result at once, as compact C memory: a server-side
    cursor would make PostgreSQL plan for the first rows (no parallel hash aggregate), several
    times slower for a whole-table report. So: numeric columns only, no values needing
    SQLAlchemy's type processing (timestamps on SQLite, say)."""
    result = conn.execute(query, params or {})
    columns = list(map(str, result.keys()))
    cursor = result.cursor
    all_numeric = set(columns) <= set(numeric)
    parts = []
    while rows := cursor.fetchmany(SLICE):
        if all_numeric:
            parts.append(pd.DataFrame(np.array(rows, dtype=float), columns=columns))
            continue
        part = pd.DataFrame(dict(zip(columns, map(list, zip(*rows, strict=True)), strict=True)))
        for name in numeric:
            part[name] = pd.to_numeric(part[name], errors="coerce").astype(float)
        parts.append(part)
    result.close()
    if not parts:
        return pd.DataFrame({name: pd.Series(dtype=float if name in numeric else object) for name in columns})
    return pd.concat(parts, ignore_index=True)
