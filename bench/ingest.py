"""Ingestion benchmark (prints figures; not a test).

1. Bulk import of a CSV of N events (default 5,000,000) with `clm import events`, into SQLite
   and into PostgreSQL, in a child process: events/s and the child's peak memory.
2. API ingestion: `clm serve` (one server process) and this process as the client, posting
   batches of 500 events: events/s.

Targets on the 2-core reference machine: bulk >= 150,000 events/s into each store, API >= 5,000
events/s, import peak memory < 500 MB whatever the file size.

    python bench/ingest.py                       # everything, 5M events
    python bench/ingest.py --events 1000000 --skip-api
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
CLM = [sys.executable, "-m", "clm.cli"]
TYPES = np.array(
    ["page_view", "product_view", "add_to_cart", "checkout_started", "email_open", "email_click"]
)
CHANNELS = np.array(["web", "app", "email"])


def make_csv(path: Path, events: int, customers: int, seed: int = 1) -> None:
    """A realistic event file: ids, types, times over a year, a product property."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2025-01-01T00:00:00", "s")
    with open(path, "w") as f:
        f.write("event_id,type,timestamp,external_id,channel,sku\n")
        done = 0
        while done < events:
            n = min(500_000, events - done)
            ids = np.arange(done, done + n)
            kinds = TYPES[rng.integers(len(TYPES), size=n)]
            when = (start + rng.integers(0, 365 * 86400, size=n).astype("timedelta64[s]")).astype(str)
            who = rng.integers(customers, size=n)
            chan = CHANNELS[rng.integers(len(CHANNELS), size=n)]
            sku = rng.integers(500, size=n)
            lines = [
                f"ev{i},{k},{t}Z,C{c},{ch},SKU{s}\n"
                for i, k, t, c, ch, s in zip(ids, kinds, when, who, chan, sku, strict=True)
            ]
            f.writelines(lines)
            done += n


def fresh_postgres(url: str) -> str:
    """Drop and create the benchmark database; return its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from clm.store.engine import normalize_url

    target = make_url(normalize_url(url))
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    return target.render_as_string(hide_password=False)


class PeakMemory:
    """The peak resident memory of a process together with the processes it starts (the import
    reads its file in a child process), read from /proc every 50 ms while they run: the largest
    sum of their resident sizes (VmRSS) at one moment, and never less than the largest single
    process's own peak (VmHWM, which the kernel keeps exactly). Not rusage: a child started by
    fork or vfork inherits the parent's peak into `ru_maxrss`, so a benchmark that had built
    big test data would report it as the import's."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.kib = 0
        self.processes: set[int] = set()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.done.wait(0.05):
            together = 0
            for pid in self._tree(self.pid):
                fields = self._status(pid)
                if "VmRSS" in fields:
                    self.processes.add(pid)
                    together += fields["VmRSS"]
                    self.kib = max(self.kib, fields.get("VmHWM", 0))
            self.kib = max(self.kib, together)

    @staticmethod
    def _status(pid: int) -> dict[str, int]:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:  # gone
            return {}
        return {
            k: int(v.split()[0])
            for k, _, v in (line.partition(":") for line in lines)
            if k in ("VmRSS", "VmHWM")
        }

    @classmethod
    def _tree(cls, pid: int) -> list[int]:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return []
        return [pid, *(p for child in children for p in cls._tree(int(child)))]

    def stop(self) -> int:
        self.done.set()
        self.thread.join()
        return self.kib


class ServerCpu:
    """The CPU time PostgreSQL's server processes spend for one database while a command runs:
    its backends (their command line names the database) and the parallel workers they start,
    read from /proc every 100 ms (a process that ends loses at most its last 100 ms). With the
    client's own CPU time it tells on a noisy machine, better than the clock, whether a change
    made a load cheaper, and which side does the work. Only for a server on this machine."""

    def __init__(self, database: str) -> None:
        self.marker = f" {database} "
        self.before = self._sample()
        self.last: dict[int, float] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.done.wait(0.1):
            self.last.update(self._sample())

    def _sample(self) -> dict[int, float]:
        found: dict[int, float] = {}
        tick = os.sysconf("SC_CLK_TCK")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ours = self.marker in command or "parallel worker" in command
            if command.startswith("postgres: ") and ours:
                fields = stat.rsplit(")", 1)[1].split()
                found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        return found

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        return sum(cpu - self.before.get(pid, 0.0) for pid, cpu in self.last.items())


TARGET_EVENTS_PER_S = 150_000
REFERENCE_RAW_ROWS_PER_S = 580_000  # the raw load limit the target was set against


def scaled_target(raw_rows_per_s: float) -> float:
    """The bulk target in proportion to this machine's raw load limit: the issue sets 150,000
    events/s on a machine whose raw limit (one SQLite transaction, or PostgreSQL COPY) is about
    580,000 rows/s, and the same kind of machine measures anywhere from half to one and a half
    times that from day to day. A rough yardstick: the import's own Python work does not scale
    with the database's raw speed."""
    return TARGET_EVENTS_PER_S * raw_rows_per_s / REFERENCE_RAW_ROWS_PER_S


def run_import(db_url: str, csv_path: Path, events: int, raw_rows_per_s: float | None = None) -> None:
    subprocess.run([*CLM, "--db", db_url, "init"], check=True, capture_output=True)
    server = ServerCpu(db_url.rsplit("/", 1)[1]) if db_url.startswith("postgresql") else None
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = DATA / "import-report.json"
    with open(out, "w") as stdout:
        child = subprocess.Popen(
            [
                *CLM,
                "--db",
                db_url,
                "import",
                "events",
                str(csv_path),
                "--json",
                "--rejections",
                str(DATA / "rej.csv"),
            ],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        peak = PeakMemory(child.pid)
        status = child.wait()
    elapsed = time.perf_counter() - t0
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the import and what it waited for
    client_cpu = sum(getattr(client_after, f) - getattr(client_before, f) for f in ("ru_utime", "ru_stime"))
    server_cpu = server.stop() if server else None
    peak_mb = peak.stop() / 1024
    processes = len(peak.processes)
    result = subprocess.CompletedProcess(child.args, status, "", child.stderr.read() if child.stderr else "")
    if result.returncode not in (0, 1):
        print(result.stderr)
        raise SystemExit(f"import failed with exit code {result.returncode}")
    report = json.loads(out.read_text())
    stored, refresh = report["seconds"]["import"], report["seconds"]["refresh"]
    backend = db_url.split(":")[0]
    print(
        f"bulk import into {backend:<20} {events:>10,} events in {elapsed:7.1f} s"
        f" = {events / elapsed:>9,.0f} events/s, peak memory {peak_mb:,.0f} MB"
        f" ({f'{processes} processes together' if processes > 1 else 'one process'})\n"
        f"    of which reading, checking and storing {stored:.1f} s = {events / stored:,.0f} events/s;"
        f" stages, loyalty and segments of the {report['customers_created']:,} customers afterwards"
        f" {refresh:.1f} s\n"
        f"    CPU time: import {client_cpu:.1f} s"
        + (f", PostgreSQL server {server_cpu:.1f} s" if server_cpu is not None else "")
        + f" (the clock: {elapsed:.1f} s on {os.cpu_count()} cores)"
    )
    if raw_rows_per_s:
        target, rate = scaled_target(raw_rows_per_s), events / elapsed
        print(
            f"    target {TARGET_EVENTS_PER_S:,} events/s at a raw limit of"
            f" {REFERENCE_RAW_ROWS_PER_S:,} rows/s; at this machine's {raw_rows_per_s:,.0f} rows/s"
            f" that is {target:,.0f} events/s: {'met' if rate >= target else 'NOT met'}"
            f" ({rate / target:.0%} of it)"
        )


RAW_ROWS = 1_000_000
RAW_COLUMNS = "event_id, customer_id, type, channel, occurred_at, received_at, properties"


def raw_limits(pg_url: str | None) -> dict[str, float]:
    """What this machine loads with no CLM at all: 1M event-like rows in one SQLite transaction
    and with one PostgreSQL COPY, into a table with only its primary key. The issue's targets
    assume ~580,000 rows/s; machines (and one machine from day to day) differ."""
    import sqlite3

    rows = [
        (f"raw{i}", i % 200_000, "page_view", "web", "2025-03-01 10:00:00.000000",
         "2025-03-01 10:00:00.000000", '{"sku":"SKU1"}')
        for i in range(RAW_ROWS)
    ]  # fmt: skip
    db = DATA / "raw.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"CREATE TABLE raw (id INTEGER PRIMARY KEY, {RAW_COLUMNS})")
    t0 = time.perf_counter()
    conn.executemany(f"INSERT INTO raw ({RAW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.commit()
    limits = {"sqlite": RAW_ROWS / (time.perf_counter() - t0)}
    conn.close()
    db.unlink()
    if pg_url:
        import psycopg

        body = "".join(
            f"{e}\t{c}\t{t}\t{ch}\t{at}+00\t{got}+00\t{props}\n" for e, c, t, ch, at, got, props in rows
        )
        with psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True) as pg:
            pg.execute("DROP TABLE IF EXISTS raw")
            pg.execute(
                "CREATE TABLE raw (id bigserial PRIMARY KEY, event_id text, customer_id bigint, type text,"
                " channel text, occurred_at timestamptz, received_at timestamptz, properties jsonb)"
            )
            t0 = time.perf_counter()
            load = f"COPY raw ({RAW_COLUMNS}) FROM STDIN"
            with pg.transaction(), pg.cursor() as cursor, cursor.copy(load) as copy:
                for start in range(0, len(body), 1 << 20):
                    copy.write(body[start : start + (1 << 20)])
            limits["postgresql"] = RAW_ROWS / (time.perf_counter() - t0)
            pg.execute("DROP TABLE raw")
    figures = [f"SQLite one transaction {limits['sqlite']:,.0f} rows/s"]
    if "postgresql" in limits:
        figures.append(f"PostgreSQL COPY {limits['postgresql']:,.0f} rows/s")
    print("raw load limit on this machine now (no CLM): " + ", ".join(figures))
    print(f"the interpreter's speed now: a pure-Python loop of 20M additions {python_loop_seconds():.2f} s")
    return limits


def python_loop_seconds() -> float:
    """A yardstick for the import's own Python work, which the raw load limits do not show
    (machines of the same kind have measured 0.7 to 4.2 s)."""
    t0 = time.perf_counter()
    total = 0
    for i in range(20_000_000):
        total += i
    return time.perf_counter() - t0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_payloads(prefix: str, events: int, batch: int, seed: int) -> list[bytes]:
    """Request bodies of `batch` page views each, spread over 50,000 customers by external id."""
    rng = np.random.default_rng(seed)
    bodies = []
    for start in range(0, events, batch):
        ids = range(start, min(start + batch, events))
        bodies.append(
            {
                "events": [
                    {
                        "event_id": f"{prefix}{i}",
                        "type": "page_view",
                        "timestamp": "2025-06-01T10:00:00Z",
                        "external_id": f"C{int(c)}",
                        "properties": {"page": "/p"},
                    }
                    for i, c in zip(ids, rng.integers(50_000, size=len(ids)), strict=True)
                ]
            }
        )
    return [json.dumps(body).encode() for body in bodies]


def analyze(db_url: str) -> None:
    """What autovacuum does for a running PostgreSQL store within its first minute: planner
    statistics, without which every per-customer statement is planned for empty tables."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(db_url)
    try:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def run_api(db_url: str, events: int, batch: int = 500, clients: int = 1, settled: bool = False) -> None:
    """Post the events in batches from `clients` connections at once (threads of this process):
    one sequential client measures a request's latency as much as the server's throughput.

    A new PostgreSQL store has no planner statistics until autovacuum's first pass (a minute
    apart by default), longer than this run: `settled` first posts a fifth as many events
    untimed and runs ANALYZE, as a store that has been receiving events is."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    subprocess.run([*CLM, "--db", db_url, "init"], check=True, capture_output=True)
    key = subprocess.run(
        [*CLM, "--db", db_url, "apikey", "create", "--role", "marketer", "--name", "bench"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = free_port()
    server = subprocess.Popen(
        [*CLM, "--db", db_url, "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=open(DATA / "server.log", "w"),  # noqa: SIM115 (the server's, closed with it)
    )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            for _ in range(100):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            payloads = api_payloads("api", events, batch, seed=2)  # not timed: the client's work

            def post(payload: bytes) -> None:
                response = client.post(
                    "/api/v1/events", content=payload, headers={"Content-Type": "application/json"}
                )
                response.raise_for_status()

            if settled:
                for payload in api_payloads("warm", events // 5, batch, seed=3):
                    post(payload)
                analyze(db_url)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(post, payloads))
            elapsed = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait()
    backend = db_url.split(":")[0]
    store = "a store with planner statistics" if settled else "a new store"
    print(
        f"API ingestion into {backend:<18} {events:>10,} events in {elapsed:7.1f} s"
        f" = {events / elapsed:>9,.0f} events/s (batches of {batch}, {clients} client"
        f"{'s' if clients > 1 else ''} at once, one server process; {store})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--api-events", type=int, default=100_000)
    parser.add_argument(
        "--api-clients", type=int, nargs="+", default=[1, 4], help="concurrent API clients; one run each"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CLM_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/clm_bench"),
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--skip-raw", action="store_true", help="do not measure the raw load limits first")
    args = parser.parse_args()

    DATA.mkdir(exist_ok=True)
    csv_path = DATA / f"events-{args.events}.csv"
    if not csv_path.exists():
        t0 = time.perf_counter()
        make_csv(csv_path, args.events, args.customers)
        print(
            f"wrote {csv_path.name} ({csv_path.stat().st_size / 1e6:,.0f} MB)"
            f" in {time.perf_counter() - t0:.0f} s"
        )
    limits: dict[str, float] = {}
    if not args.skip_raw:
        limits = raw_limits(None if args.skip_postgres else fresh_postgres(args.postgres))
    if not args.skip_sqlite:
        db = DATA / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        run_import(f"sqlite:///{db}", csv_path, args.events, limits.get("sqlite"))
    if not args.skip_postgres:
        run_import(fresh_postgres(args.postgres), csv_path, args.events, limits.get("postgresql"))
    if not args.skip_api:
        for clients in args.api_clients:
            if not args.skip_sqlite:
                db = DATA / "api.db"
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
                run_api(f"sqlite:///{db}", args.api_events, clients=clients)
            if not args.skip_postgres:
                for settled in (False, True):
                    run_api(fresh_postgres(args.postgres), args.api_events, clients=clients, settled=settled)


if __name__ == "__main__":
    main()
