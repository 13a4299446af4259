#!/usr/bin/env python3
"""Rigshift load and fault harness (issue 9).

Runs a mixed workload (search, quote, reserve firm or interruptible, cancel, extend, and
operators' grid curtailment events) over HTTP against two server processes that share one PostgreSQL, injects faults while the load runs (SIGKILL of a server
process, then a restart; an immediate shutdown of PostgreSQL, then a restart, with the
servers left to reconnect by themselves; requests abandoned by a very short client timeout),
and checks from the database afterwards that:

  * every reservation acknowledged to a client exists, as acknowledged (customer, pool,
    units, start, end, and cancelled when a cancellation was acknowledged);
  * no reservation exists for a request that was refused, none was created twice by
    retries of one Idempotency-Key, and none exists that no client asked for;
  * no unit is double-booked, and every reservation holds all of its units or none (the
    unit-hours a preemption or grid event took counted as cut);
  * no firm reservation lost an hour to a preemption or a grid event, and every
    interrupted unit-hour was credited exactly once (`server reconcile` checks the credits);
  * operators open and resolve incidents on booked units during the run: no firm unit-hour
    is lost without being moved to a spare or credited, and every cut matches its record;
  * the ledger balances per transaction and in total, and `server reconcile` exits 0;
  * no connection is left idle in a transaction;
  * outside the fault windows no request failed (no 5xx, no refused connection).

It prints the counts and exits 1 on any violation, 2 when the run was degenerate (say, no
reservation acknowledged or a planned fault not injected) or could not be set up.

Everything it starts is private: a PostgreSQL cluster in target/harness/pg-cluster (started with
`server pg-start`, a fresh `rigshift_harness` database on every run), servers on two free
loopback ports (or --ports) with their logs in target/harness/. It stops all of it on exit, Ctrl-C included.
Only the standard library and the `psql` client are needed; the release build must exist
(`cargo leptos build --release`: target/release/server and target/site).

Short run (the test command's; about 75 s of load, 4 faults):

    python3 server/harness/load_fault.py

Long run (10 minutes at 200 operations/s, a fault every 20 s, about 12 minutes in all):

    python3 server/harness/load_fault.py --duration 600 --rate 200 --fault-every 20

`--workers` bounds how many requests are in flight at once (16 by default); raise it to
test the servers under more concurrency than their database pools (20 connections each).

`--help` lists the other knobs (--seed, --abandon, --no-faults, --report FILE for a JSON
summary, ...).
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK_DIR = ROOT / "target" / "harness"
DB_NAME = "rigshift_harness"
HOUR = 3600

# A 409 with this code means "the first request with this key is still running" (or died
# with its server): not a refusal, the outcome is unknown until the first one answers.
IN_USE = "idempotency-key-in-use"
# A 409 with this code means the first request's server stopped before its answer was
# recorded: the outcome is unknown, not refused.
CUT_OFF = "idempotency-outcome-unknown"
# How many 409 in-use answers a reserve waits through (the server says Retry-After: 1).
MAX_IN_USE_RETRIES = 8
# Errors this long after a fault's recovery still count as part of the fault.
FAULT_GRACE_S = 5.0

OPERATIONS = {"search": 0.20, "browse": 0.04, "quote": 0.20, "reserve": 0.35, "cancel": 0.10, "extend": 0.14,
              "grid_event": 0.01, "hold": 0.04, "resale": 0.03, "order": 0.005,
              "incident": 0.006}
# The share of bookings on pools that sell it that ask for the interruptible tier (firm
# bookings then preempt them when the pool is short).
INTERRUPTIBLE_SHARE = 0.35
STATUS_CLASSES = ["2xx", "4xx", "5xx", "conn", "timeout", "abandoned"]

_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


class HarnessError(Exception):
    """The harness could not set up or run (not a violation found in the system)."""


def iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def epoch_of(text: str | None) -> int | None:
    if not text:
        return None
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


# ---------------------------------------------------------------------------------------
# PostgreSQL: the private cluster and psql
# ---------------------------------------------------------------------------------------


def psql(url: str, sql: str, timeout: float = 120) -> list[list[str]]:
    """Runs one statement and returns its rows as lists of text fields."""
    r = subprocess.run(
        ["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-F", "\t", "-c", sql],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if r.returncode != 0:
        raise HarnessError(f"psql failed ({sql[:80]}...): {r.stderr.strip()}")
    return [line.split("\t") for line in r.stdout.splitlines() if line]


class Cluster:
    """The harness's own PostgreSQL, managed through `server pg-start`/`pg-stop`, with an
    immediate shutdown done by pg_ctl directly (pg-stop is a fast, clean shutdown)."""

    def __init__(self, server_bin: Path, data_root: Path):
        self.server_bin = server_bin
        self.root = data_root
        self.admin_url = ""

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)  # else the server would not manage the private cluster
        env["RIGSHIFT_DATA_DIR"] = str(self.root)
        env["RUST_LOG"] = "warn"
        return env

    def start(self) -> None:
        r = subprocess.run(
            [str(self.server_bin), "pg-start"],
            cwd=ROOT, env=self._env(), capture_output=True, text=True, timeout=180,
        )
        if r.returncode != 0 or not r.stdout.strip():
            raise HarnessError(f"pg-start failed: {r.stderr.strip()} (see {self.root}/postgresql.log)")
        self.admin_url = r.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        subprocess.run(
            [str(self.server_bin), "pg-stop"],
            cwd=ROOT, env=self._env(), capture_output=True, text=True, timeout=120,
        )

    def stop_immediately(self) -> None:
        """Immediate shutdown: every backend is killed, no checkpoint; a restart recovers
        from the WAL, like after a power cut of the database host."""
        data = self.root / "pg"
        cmd = [str(self._pg_ctl()), "stop", "-D", str(data), "-m", "immediate", "-w", "-t", "60"]
        # PostgreSQL refuses root; the server runs the cluster as `postgres` then (see
        # server/src/embedded_pg.rs), so pg_ctl must run as that user too.
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
        if r.returncode != 0:
            raise HarnessError(f"immediate stop failed: {r.stderr.strip()}")

    def _pg_ctl(self) -> Path:
        # The pg_ctl of the cluster's own major version.
        version = (self.root / "pg" / "PG_VERSION").read_text().strip()
        candidate = Path(f"/usr/lib/postgresql/{version}/bin/pg_ctl")
        if candidate.is_file():
            return candidate
        found = shutil.which("pg_ctl")
        if not found:
            raise HarnessError("pg_ctl not found")
        return Path(found)

    def url(self, database: str) -> str:
        return self.admin_url.replace("/postgres?", f"/{database}?", 1)

    def log_paths(self) -> list[Path]:
        return [self.root / "postgresql.log"]


class HaDatabase:
    """The replicated cluster of ha_cluster.py (Patroni, two PostgreSQL members, etcd,
    HAProxy) in the harness's HA mode: the servers reach the primary through HAProxy, and
    the fault is the loss of the primary's machine (SIGKILL of its PostgreSQL and Patroni)."""

    def __init__(self, base: Path):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from ha_cluster import HaCluster
        self.ha = HaCluster(base)
        self.root = base
        self.admin_url = ""

    def start(self) -> None:
        from ha_cluster import HaError
        try:
            self.ha.start()
        except HaError as e:
            raise HarnessError(str(e))
        self.admin_url = self.ha.admin_url

    def stop(self) -> None:
        self.ha.stop()

    def url(self, database: str) -> str:
        return self.ha.url(database)

    def log_paths(self) -> list[Path]:
        return self.ha.log_files()


# ---------------------------------------------------------------------------------------
# Server processes
# ---------------------------------------------------------------------------------------


def http_call(port: int, method: str, path: str, key: str | None = None, body=None,
              headers: dict | None = None, timeout: float = 30.0):
    """One request on a fresh connection: (status, headers, payload). A new connection per
    request keeps every transport error meaningful (no stale keep-alive sockets)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        h = {"Connection": "close", "Accept": "application/json"}
        if key:
            h["Authorization"] = f"Bearer {key}"
        if data is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        payload = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, payload
    finally:
        conn.close()


class Server:
    """One `server serve` process; restarted on the same port with the same log file."""

    def __init__(self, label: str, port: int, server_bin: Path, db_url: str, log_path: Path,
                 extra_env: dict | None = None):
        self.label = label
        self.extra_env = extra_env or {}
        self.port = port
        self.server_bin = server_bin
        self.db_url = db_url
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.incarnations = 0
        # Set while the harness itself has it down, so the monitor doesn't count a death.
        self.expected_down = False
        self.peak_hwm_kb = 0
        self.peak_rss_kb = 0
        self.rss_kb = 0  # the latest sample

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "LEPTOS_OUTPUT_NAME": "rigshift",
            "LEPTOS_SITE_ROOT": "target/site",
            "LEPTOS_ENV": "PROD",
            "DATABASE_URL": self.db_url,
            "RIGSHIFT_LISTEN": f"127.0.0.1:{self.port}",
            "RUST_LOG": "warn",
            # Several thousand requests a minute per key: the default limit would answer 429.
            "RIGSHIFT_API_RATE_PER_MINUTE": "1000000",
        })
        env.pop("RIGSHIFT_SEED", None)  # `auto`: server A loads the demo market
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        logf = open(self.log_path, "ab")
        logf.write(f"\n===== harness: start #{self.incarnations + 1} of server {self.label} at {iso(int(time.time()))}\n".encode())
        logf.flush()
        # Its own session: a Ctrl-C aimed at the harness reaches the harness only, which
        # then stops the servers in order.
        self.proc = subprocess.Popen(
            [str(self.server_bin), "serve"], cwd=ROOT, env=self._env(),
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        logf.close()
        self.incarnations += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def sample_memory(self) -> None:
        if not self.alive():
            return
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return
        for line in status.splitlines():
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                kb = int(value.split()[0])
                if name == "VmHWM":
                    self.peak_hwm_kb = max(self.peak_hwm_kb, kb)
                else:
                    self.rss_kb = kb
                    self.peak_rss_kb = max(self.peak_rss_kb, kb)

    def kill9(self) -> None:
        self.sample_memory()  # the high-water mark dies with the process
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if not self.alive():
            return
        self.sample_memory()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def healthy(self) -> bool:
        try:
            status, _, _ = http_call(self.port, "GET", "/healthz", timeout=3)
            return status == 200
        except (OSError, http.client.HTTPException):
            return False

    def wait_healthy(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return True
            if not self.alive():
                return False
            time.sleep(0.2)
        return False


def free_ports(n: int) -> list[int]:
    """`n` distinct loopback ports that nothing listens on now (the OS picks them)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_in_use(port: int) -> bool:
    try:
        http_call(port, "GET", "/healthz", timeout=1)
        return True
    except ConnectionRefusedError:
        return False
    except (OSError, http.client.HTTPException):
        return True


# ---------------------------------------------------------------------------------------
# What the clients saw
# ---------------------------------------------------------------------------------------


@dataclass
class Pool:
    id: int
    unit_count: int
    gpus_per_node: int
    lead_h: int
    min_term_h: int
    max_term_h: int
    window_end: int  # end of the availability window the harness books in (epoch)
    site: int = 0
    operator: int = 0
    interruptible: bool = False
    # The site's mining fleet in kW: a grid event asks a little more than that.
    fleet_kw: int = 0
    hot: bool = False


@dataclass
class Attempt:
    """One intended reservation: one Idempotency-Key, one unique (org, pool, units, start),
    so that any reservation in the database can be traced back to the request that made it."""
    key: str
    org: int
    pool: int
    units: int
    start: int
    end: int
    body: dict
    outcome: str = "pending"  # acked | refused | unknown
    status: int | None = None
    code: str = ""
    res_id: int | None = None
    tries: int = 0
    history: list = field(default_factory=list)  # what each try got, for the report


@dataclass
class Booking:
    """A reservation acknowledged to a client, and what was acknowledged about it since."""
    id: int
    org: int
    pool: int
    units: int
    start: int
    end: int  # as last acknowledged
    key: str
    firm: bool = True
    resold: bool = False           # some of its hours were bought on resale
    cancelled: bool = False        # cancellation acknowledged
    cancel_unknown: bool = False   # a cancellation was sent, its answer was lost
    possible_ends: set = field(default_factory=set)  # ends of extensions whose answer was lost


@dataclass
class Result:
    status: int | None
    cls: str  # one of STATUS_CLASSES
    payload: bytes = b""
    headers: dict = field(default_factory=dict)

    def json(self) -> dict:
        try:
            v = json.loads(self.payload or b"null")
            return v if isinstance(v, dict) else {}
        except ValueError:
            return {}

    @property
    def code(self) -> str:
        return str(self.json().get("code", "")) if self.status and self.status >= 400 else ""


class FaultWindows:
    """When faults were in progress; errors overlapping one (plus a grace) are expected."""

    def __init__(self):
        self.lock = threading.Lock()
        self.windows: list[list] = []  # [start, end or None] in monotonic time

    def open(self) -> int:
        with self.lock:
            self.windows.append([time.monotonic(), None])
            return len(self.windows) - 1

    def close(self, i: int) -> None:
        with self.lock:
            self.windows[i][1] = time.monotonic()

    def covers(self, t0: float, t1: float) -> bool:
        with self.lock:
            for start, end in self.windows:
                if t1 >= start and (end is None or t0 <= end + FAULT_GRACE_S):
                    return True
        return False


class Record:
    """Everything the clients saw, shared by the workers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = collections.Counter()      # (kind, class)
        self.problems = collections.Counter()      # (kind, status, code) of 4xx/5xx
        self.latencies = collections.defaultdict(list)  # kind -> seconds
        self.attempts: dict[str, Attempt] = {}
        self.used_tuples: set = set()
        self.bookings: dict[int, Booking] = {}
        self.idle: list[int] = []                  # bookings free for a cancel or extend
        self.cancels_acked = 0
        self.extends_acked = 0
        self.interruptible_acked = 0
        self.grid_events_acked = 0
        self.grid_events_refused = 0
        self.incidents_opened: list[tuple[int, int]] = []  # (incident id, operator) still open
        self.incidents_acked = 0
        self.incidents_resolved = 0
        self.holds_acked = 0
        self.holds_confirmed = 0
        # Acknowledged resale purchases: buyer's reservation id -> (buyer, pool, units, start, end)
        self.purchases: dict[int, tuple] = {}
        self.purchases_unknown = 0
        self.orders_acked: dict[int, int] = {}     # order id -> organization
        self.replays = 0
        self.unexpected: list[str] = []            # failures outside the fault windows
        self.anomalies: list[str] = []             # answers that contradict what was acknowledged
        self.harness_errors: list[str] = []

    def count(self, kind: str, r: Result, seconds: float) -> None:
        with self.lock:
            self.requests[(kind, r.cls)] += 1
            if r.status and r.status >= 400:
                self.problems[(kind, r.status, r.code)] += 1
            if r.status is not None and r.status < 500 and r.status != 408:
                self.latencies[kind].append(seconds)  # answered (not failed) requests only

    def latency_ms(self) -> dict:
        out = {}
        with self.lock:
            for kind, values in self.latencies.items():
                v = sorted(values)
                at = lambda q: round(v[min(len(v) - 1, int(q * len(v)))] * 1000, 1)
                out[kind] = {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(v[-1] * 1000, 1)}
        return out

    def note(self, bucket: list, msg: str) -> None:
        with self.lock:
            bucket.append(msg)


# ---------------------------------------------------------------------------------------
# The workload
# ---------------------------------------------------------------------------------------


class Pacer:
    """Hands out request slots at `rate` per second across all workers. Falling behind
    builds up at most a quarter second of catch-up, so a stall is not followed by a burst."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait_turn(self, stop: threading.Event) -> bool:
        with self.lock:
            now = time.monotonic()
            slot = max(self.next, now - 0.25)
            self.next = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        return not stop.is_set()


class Workload:
    def __init__(self, args, servers: list[Server], keys: dict[int, str], pools: list[Pool],
                 record: Record, faults: FaultWindows, operator_keys: dict[int, str]):
        self.args = args
        self.servers = servers
        self.orgs = sorted(keys)  # the customers
        self.keys = {**keys, **operator_keys}
        self.pools = pools
        self.hot = [p for p in pools if p.hot]
        self.cold = [p for p in pools if not p.hot] or self.hot
        self.record = record
        self.faults = faults
        self.stop = threading.Event()
        self.pacer = Pacer(args.rate)
        # Whole hours, far enough ahead for every pool's lead time for the whole run.
        lead = max(p.lead_h for p in pools)
        self.base_start = (int(time.time()) // HOUR + 1 + lead + 2) * HOUR
        self.spread_h = self._spread()

    def _spread(self) -> int:
        """How many start hours reservations spread over: small enough that the hot pools
        are fought over, large enough that every attempt gets its own (org, pool, units,
        start) with room to spare."""
        expected = self.args.rate * self.args.duration * OPERATIONS["reserve"] * 1.2
        per_hour = len(self.orgs) * len(self.hot) * 4  # 1 to 4 units
        spread = max(self.args.min_spread_hours, int(2 * expected / per_hour) + 1)
        latest = min(p.window_end for p in self.pools) - self.base_start - 24 * 5 * HOUR
        return max(24, min(spread, latest // HOUR))

    # -- request plumbing ---------------------------------------------------------------

    def call(self, rng: random.Random, kind: str, method: str, path: str, org: int,
             body=None, headers=None, abandon: bool = False) -> Result:
        server = rng.choice(self.servers)  # a load balancer that knows nothing
        timeout = rng.uniform(0.002, 0.03) if abandon else self.args.timeout
        t0 = time.monotonic()
        try:
            key = self.keys[org] if org is not None else None
            status, hdrs, payload = http_call(server.port, method, path, key, body,
                                              headers, timeout)
            r = Result(status, f"{status // 100}xx" if status < 600 else "5xx", payload, hdrs)
        except TimeoutError:
            r = Result(None, "abandoned" if abandon else "timeout")
        except (OSError, http.client.HTTPException):
            r = Result(None, "conn")
        t1 = time.monotonic()
        self.record.count(kind, r, t1 - t0)
        failed = r.cls in ("conn", "timeout") or (r.status is not None and (r.status >= 500 or r.status == 408))
        if failed and not self.faults.covers(t0, t1):
            self.record.note(self.record.unexpected,
                             f"{kind} {method} {path} on {server.label}: {r.status or r.cls} {r.code} "
                             f"{r.payload[:200]!r} outside any fault window")
        return r

    def abandon(self, rng: random.Random) -> bool:
        return rng.random() < self.args.abandon

    def window(self, rng: random.Random, pool: Pool) -> tuple[int, int]:
        start = self.base_start + rng.randrange(self.spread_h) * HOUR
        hours = rng.randint(max(pool.min_term_h, 1), max(pool.min_term_h, min(pool.max_term_h, 72)))
        return start, start + hours * HOUR

    def quantity(self, rng: random.Random, pool: Pool, units: int) -> dict:
        # Mostly whole nodes; sometimes GPUs that the server rounds up to the same nodes.
        if rng.random() < 0.25:
            return {"gpus": units * pool.gpus_per_node - rng.randrange(pool.gpus_per_node)}
        return {"units": units}

    def pick_pool(self, rng: random.Random) -> Pool:
        return rng.choice(self.hot) if rng.random() < 0.85 else rng.choice(self.cold)

    # -- operations ---------------------------------------------------------------------

    def run_worker(self, wid: int) -> None:
        rng = random.Random(self.args.seed * 1000 + wid)
        ops, weights = zip(*OPERATIONS.items())
        while self.pacer.wait_turn(self.stop):
            op = rng.choices(ops, weights)[0]
            try:
                getattr(self, f"op_{op}")(rng)
            except Exception as e:  # a harness bug: keep the load going, report it
                self.record.note(self.record.harness_errors, f"{op}: {e!r}")

    def op_search(self, rng: random.Random) -> None:
        pool = self.pick_pool(rng)
        q = [f"hours={rng.choice([24, 48, 72])}", f"gpus={8 * rng.randint(1, 4)}", "kind=gpu",
             f"limit={rng.choice([5, 10, 20])}"]
        if rng.random() < 0.5:
            q.append(f"within_days={rng.randint(1, 30)}")
        else:
            q.append(f"start={iso(self.window(rng, pool)[0])}")
        q.append(f"sort={rng.choice(['price', 'earliest_start', 'total_cost'])}")
        self.call(rng, "search", "GET", "/api/v1/search?" + "&".join(q).replace(":", "%3A"),
                  rng.choice(self.orgs), abandon=self.abandon(rng))

    def op_browse(self, rng: random.Random) -> None:
        """A visitor, not signed in, opens the market (read from the replica by a server
        that has one, while it is fresh)."""
        self.call(rng, "browse", "GET", "/", None, abandon=self.abandon(rng))

    def op_quote(self, rng: random.Random) -> None:
        pool = self.pick_pool(rng)
        start, end = self.window(rng, pool)
        body = {"pool_id": pool.id, "quantity": self.quantity(rng, pool, rng.randint(1, 4)),
                "start": iso(start), "end": iso(end)}
        self.call(rng, "quote", "POST", "/api/v1/quotes", rng.choice(self.orgs), body,
                  abandon=self.abandon(rng))

    def new_attempt(self, rng: random.Random) -> Attempt | None:
        for _ in range(64):
            pool = self.pick_pool(rng)
            org = rng.choice(self.orgs)
            units = rng.choices([1, 2, 3, 4], [4, 3, 2, 1])[0]
            start, end = self.window(rng, pool)
            t = (org, pool.id, units, start)
            with self.record.lock:
                if t in self.record.used_tuples:
                    continue
                self.record.used_tuples.add(t)
                att = Attempt(
                    key=f"harness-{uuid.uuid4()}", org=org, pool=pool.id, units=units,
                    start=start, end=end,
                    body={"pool_id": pool.id, "quantity": self.quantity(rng, pool, units),
                          "start": iso(start), "end": iso(end)},
                )
                if pool.interruptible and rng.random() < INTERRUPTIBLE_SHARE:
                    att.body["tier"] = "interruptible"
                self.record.attempts[att.key] = att
                return att
        return None

    def op_reserve(self, rng: random.Random) -> None:
        att = self.new_attempt(rng)
        if att is None:  # every combination used: the run is longer than planned
            self.op_quote(rng)
            return
        r = self.send_keyed(rng, att, "reserve", "/api/v1/reservations")
        if r is not None:
            self.acknowledge(att, r)

    def send_keyed(self, rng: random.Random, att: Attempt, kind: str, path: str) -> Result | None:
        """Sends the attempt with its Idempotency-Key, retrying lost answers with the same key
        (the server replays the first answer or runs it once) and waiting through "still
        running". Returns the 2xx answer, or None with the attempt's outcome set."""
        deadline = time.monotonic() + self.args.retry_deadline
        abandon_first = self.abandon(rng)
        in_use = 0
        while True:
            att.tries += 1
            r = self.call(rng, kind, "POST", path, att.org, att.body,
                          {"Idempotency-Key": att.key}, abandon=abandon_first and att.tries == 1)
            att.status, att.code = r.status, r.code
            att.history.append(r.code if r.code == IN_USE else str(r.status or r.cls))
            if r.status is not None and 200 <= r.status < 300:
                return r
            # Lost answers (timeouts, dropped connections, 5xx, 408) are retried with the
            # same key: the server replays the first answer or runs it once.
            lost = r.status is None or r.status >= 500 or r.status == 408
            running = r.status == 409 and r.code == IN_USE
            in_use += running
            if (lost or (running and in_use <= MAX_IN_USE_RETRIES)) and time.monotonic() < deadline:
                time.sleep(1.0 if running else min(2.0, 0.2 * att.tries))
                continue
            if lost or running or r.code == CUT_OFF:
                att.outcome = "unknown"
            elif r.status == 422 and r.code == "idempotency-key-reused":
                att.outcome = "unknown"
                self.record.note(self.record.anomalies,
                                 f"key {att.key} answered idempotency-key-reused though every try sent the same body")
            else:
                att.outcome = "refused"
            return None

    def acknowledge(self, att: Attempt, r: Result) -> None:
        res = r.json()
        rid = res.get("id")
        att.outcome, att.res_id = "acked", rid
        seen = (res.get("customer_id"), res.get("pool_id"), res.get("units"),
                epoch_of(res.get("start")), epoch_of(res.get("end")))
        if not isinstance(rid, int) or seen != (att.org, att.pool, att.units, att.start, att.end):
            self.record.note(self.record.anomalies,
                             f"key {att.key}: acknowledged {seen} with id {rid} for request "
                             f"{(att.org, att.pool, att.units, att.start, att.end)}")
            if not isinstance(rid, int):
                return
        with self.record.lock:
            if r.headers.get("idempotent-replayed") == "true":
                self.record.replays += 1
            if res.get("tier") == "interruptible":
                self.record.interruptible_acked += 1
            if rid in self.record.bookings:
                other = self.record.bookings[rid]
                self.record.anomalies.append(f"reservation {rid} acknowledged to keys {other.key} and {att.key}")
                return
            self.record.bookings[rid] = Booking(rid, att.org, att.pool, att.units, att.start,
                                                att.end, att.key, firm=res.get("tier") != "interruptible")
            self.record.idle.append(rid)

    def checkout(self, rng: random.Random) -> Booking | None:
        """Takes an acknowledged reservation for one operation, so two workers never act on
        one reservation at once (its expected state stays exact)."""
        with self.record.lock:
            if not self.record.idle:
                return None
            i = rng.randrange(len(self.record.idle))
            self.record.idle[i], self.record.idle[-1] = self.record.idle[-1], self.record.idle[i]
            return self.record.bookings[self.record.idle.pop()]

    def give_back(self, b: Booking) -> None:
        with self.record.lock:
            self.record.idle.append(b.id)

    def op_cancel(self, rng: random.Random) -> None:
        b = self.checkout(rng)
        if b is None:
            self.op_reserve(rng)
            return
        r = self.call(rng, "cancel", "POST", f"/api/v1/reservations/{b.id}/cancel", b.org,
                      abandon=self.abandon(rng))
        res = r.json()
        if r.status == 200:
            if res.get("state") != "cancelled" or res.get("id") != b.id:
                self.record.note(self.record.anomalies, f"cancel of {b.id} answered 200 with {res}")
            b.cancelled = True
            with self.record.lock:
                self.record.cancels_acked += 1
        elif r.status is not None and 400 <= r.status < 500 and r.status != 408:
            # Refused (a lost race may answer 409; the count shows among the problems): it
            # stays as it is, and the database check says whether it was changed anyway.
            if r.status == 404:
                self.record.note(self.record.anomalies, f"cancel of acknowledged {b.id} answered 404: {res}")
            self.give_back(b)
        else:
            b.cancel_unknown = True  # answer lost: either state is right; retired

    def op_extend(self, rng: random.Random) -> None:
        b = self.checkout(rng)
        if b is None:
            self.op_reserve(rng)
            return
        new_end = b.end + rng.randint(1, 24) * HOUR
        r = self.call(rng, "extend", "POST", f"/api/v1/reservations/{b.id}/extend", b.org,
                      {"end": iso(new_end)}, abandon=self.abandon(rng))
        res = r.json()
        if r.status == 200:
            if epoch_of(res.get("end")) != new_end or res.get("id") != b.id:
                self.record.note(self.record.anomalies, f"extend of {b.id} to {iso(new_end)} answered {res}")
            b.end = new_end
            with self.record.lock:
                self.record.extends_acked += 1
            self.give_back(b)
        elif r.status is not None and 400 <= r.status < 500 and r.status != 408:
            self.give_back(b)  # refused (units taken after the end): unchanged
        else:
            b.possible_ends.add(new_end)  # answer lost: either end is right; retired


    def op_hold(self, rng: random.Random) -> None:
        """Holds capacity for a minute (so some holds expire during the run and the release
        job gives their units back, whatever was killed), and confirms half of them."""
        att = self.new_attempt(rng)
        if att is None:
            self.op_quote(rng)
            return
        att.body.pop("tier", None)  # holds are firm
        att.body["minutes"] = 1
        r = self.send_keyed(rng, att, "hold", "/api/v1/holds")
        if r is not None:
            res = r.json()
            att.outcome, att.res_id = "acked", res.get("id")
            with self.record.lock:
                self.record.holds_acked += 1
            if rng.random() < 0.5:
                c = self.call(rng, "confirm", "POST", f"/api/v1/reservations/{att.res_id}/confirm", att.org)
                if c.status == 200:
                    with self.record.lock:
                        self.record.holds_confirmed += 1
                    self.acknowledge(att, c)

    def op_resale(self, rng: random.Random) -> None:
        """A customer lists the last hours of a firm booking, another buys them."""
        b = self.checkout(rng)
        if b is None:
            self.op_quote(rng)
            return
        hours = (b.end - b.start) // HOUR
        if not b.firm or b.resold or hours < 2 or b.start < time.time() + 2 * HOUR:
            self.give_back(b)
            return
        # The listing runs to the booking's end as it is now; once the booking is given back
        # another worker may extend it before the purchase, so `b.end` is read here.
        start, end = b.end - rng.randint(1, hours - 1) * HOUR, b.end
        body = {"reservation_id": b.id, "units": b.units, "start": iso(start),
                "unit_hour_price_cents": rng.randint(100, 3000)}
        r = self.call(rng, "resale", "POST", "/api/v1/resale-listings", b.org, body,
                      {"Idempotency-Key": f"market-rl-{uuid.uuid4()}"})
        listing = r.json().get("id") if r.status == 201 else None
        self.give_back(b)
        if listing is None:
            return
        buyer = rng.choice([o for o in self.orgs if o != b.org] or self.orgs)
        r = self.call(rng, "resale", "POST", f"/api/v1/resale-listings/{listing}/buy", buyer, {},
                      {"Idempotency-Key": f"market-rb-{uuid.uuid4()}"})
        with self.record.lock:
            if r.status == 201:
                res = r.json()
                b.resold = True
                self.record.purchases[res.get("id")] = (buyer, b.pool, b.units, start, end)
            elif r.status is None or r.status >= 500 or r.status == 408:
                b.resold = True  # perhaps
                self.record.purchases_unknown += 1

    def op_order(self, rng: random.Random) -> None:
        """A customer leaves a standing order for one node over a window the load fights over."""
        pool = self.pick_pool(rng)
        start, end = self.window(rng, pool)
        org = rng.choice(self.orgs)
        body = {"kind": "gpu", "quantity": {"units": 1}, "hours": (end - start) // HOUR,
                "earliest_start": iso(start), "latest_start": iso(start)}
        r = self.call(rng, "order", "POST", "/api/v1/orders", org, body,
                      {"Idempotency-Key": f"market-or-{uuid.uuid4()}"})
        if r.status == 201:
            with self.record.lock:
                self.record.orders_acked[r.json().get("id")] = org

    def op_grid_event(self, rng: random.Random) -> None:
        """The operator of a hot pool's site records a curtailment over hours the bookings
        use, asking a little more than its mining fleet, so interruptible units are shed
        (or the request is refused when too few run then)."""
        pool = rng.choice(self.hot)
        start = self.base_start + rng.randrange(self.spread_h) * HOUR
        body = {"program": "harness ERS", "start": iso(start),
                "end": iso(start + rng.randint(1, 3) * HOUR),
                "shed_kw": pool.fleet_kw + rng.randint(1, 120)}
        r = self.call(rng, "grid_event", "POST", f"/api/v1/sites/{pool.site}/grid-events",
                      pool.operator, body, {"Idempotency-Key": f"harness-ge-{uuid.uuid4()}"})
        with self.record.lock:
            if r.status == 201:
                self.record.grid_events_acked += 1
            elif r.status == 422:
                self.record.grid_events_refused += 1


    def op_incident(self, rng: random.Random) -> None:
        """The operator of a hot pool records a unit down (since a few minutes ago, open or
        for a few hours), which heals or credits the bookings on it; or resolves one of the
        incidents it opened."""
        with self.record.lock:
            resolvable = list(self.record.incidents_opened)
        if resolvable and rng.random() < 0.5:
            inc, operator = rng.choice(resolvable)
            r = self.call(rng, "incident", "POST", f"/api/v1/incidents/{inc}/resolve", operator, {})
            if r.status == 200:
                with self.record.lock:
                    if (inc, operator) in self.record.incidents_opened:
                        self.record.incidents_opened.remove((inc, operator))
                        self.record.incidents_resolved += 1
            return
        pool = rng.choice(self.hot)
        now = int(time.time())
        body = {"units": [rng.randint(1, pool.unit_count)], "cause": "harness: node down",
                "started_at": iso(now - rng.randint(0, 1800))}
        if rng.random() < 0.5:
            body["ends_at"] = iso((now // HOUR + rng.randint(2, 6)) * HOUR)
        r = self.call(rng, "incident", "POST", f"/api/v1/pools/{pool.id}/incidents", pool.operator,
                      body, {"Idempotency-Key": f"harness-ge-inc-{uuid.uuid4()}"})
        if r.status == 201:
            inc = json.loads(r.payload)["id"]
            with self.record.lock:
                self.record.incidents_acked += 1
                if "ends_at" not in body:
                    self.record.incidents_opened.append((inc, pool.operator))


# ---------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------


class FaultInjector:
    """Injects faults in turn (kill A, database, kill B, database, ...) every `every` s."""

    def __init__(self, args, cluster: Cluster, servers: list[Server], faults: FaultWindows,
                 violations: list[str], lock: threading.Lock):
        self.args = args
        self.cluster = cluster
        self.servers = servers
        self.faults = faults
        self.violations = violations
        self.lock = lock  # shared with the monitor, which also restarts servers
        self.kills = 0
        self.db_restarts = 0
        self.failovers: list[dict] = []
        self.events: list[str] = []
        self.stop = threading.Event()

    def run(self, load_started: float) -> None:
        plan = ["failover", "kill"] if self.args.ha else ["kill", "db"]
        n = 0
        while True:
            at = load_started + (n + 1) * self.args.fault_every
            # The last fault must recover before the load ends.
            if at > load_started + self.args.duration - 10 or self.stop.wait(max(0.0, at - time.monotonic())):
                return
            kind = plan[n % 2]
            server = self.servers[(n // 2) % len(self.servers)]
            try:
                if kind == "kill":
                    self.kill_server(server)
                elif kind == "failover":
                    self.failover()
                else:
                    self.restart_database()
            except HarnessError as e:
                self.violations.append(f"fault injection failed: {e}")
            n += 1

    def kill_server(self, server: Server) -> None:
        window = self.faults.open()
        with self.lock:
            server.expected_down = True
            log(f"fault: SIGKILL server {server.label} (pid {server.proc.pid})")
            server.kill9()
            self.kills += 1
            time.sleep(self.args.kill_downtime)
            server.start()
            server.expected_down = False
        took = time.monotonic()
        if not server.wait_healthy(90):
            self.violations.append(f"server {server.label} not healthy 90 s after its restart (see {server.log_path})")
        self.events.append(f"kill {server.label}: back after {time.monotonic() - took:.1f} s")
        log(f"fault: server {server.label} healthy again")
        self.faults.close(window)

    def restart_database(self) -> None:
        window = self.faults.open()
        log("fault: PostgreSQL immediate shutdown")
        self.cluster.stop_immediately()
        self.db_restarts += 1
        time.sleep(self.args.db_downtime)
        self.cluster.start()
        back = time.monotonic()
        log("fault: PostgreSQL restarted; waiting for the servers to reconnect by themselves")
        for s in self.servers:
            if not s.wait_healthy(60):
                self.violations.append(
                    f"server {s.label} did not reconnect within 60 s of the database restart "
                    f"(alive: {s.alive()}; see {s.log_path})")
        self.events.append(f"database restart: servers healthy {time.monotonic() - back:.1f} s after it was back")
        self.faults.close(window)


    def failover(self) -> None:
        """Loses the primary's machine: SIGKILL of its PostgreSQL and its Patroni. Patroni
        promotes the synchronous standby, HAProxy follows, the servers reconnect by
        themselves; then the old primary's Patroni is started again and it rejoins as the
        synchronous standby (outside the fault window: that must cost nothing)."""
        window = self.faults.open()
        unavailable = Unavailability(self.servers[0])
        old = self.cluster.ha.kill_primary()
        killed = time.monotonic()
        try:
            new, promoted = self.cluster.ha.wait_promoted(old)
        except Exception as e:
            raise HarnessError(f"no promotion after killing {old}: {e}")
        for s in self.servers:
            if not s.wait_healthy(60):
                self.violations.append(f"server {s.label} did not follow the failover within 60 s (see {s.log_path})")
        healthy = time.monotonic() - killed
        answered_503 = unavailable.stop()
        self.faults.close(window)
        try:
            rejoined = self.cluster.ha.rejoin(old)
        except Exception as e:
            raise HarnessError(f"{old} did not rejoin: {e}")
        event = {"killed": old, "promoted": new, "promoted_after_s": round(promoted, 1),
                 "servers_healthy_after_s": round(healthy, 1), "api_503_s": round(answered_503, 1),
                 "rejoined_as_sync_standby_after_s": round(rejoined, 1)}
        self.failovers.append(event)
        self.events.append(f"failover {old} -> {new}: writable through HAProxy {promoted:.1f} s after the "
                           f"kill, /healthz 503 for {answered_503:.1f} s, {old} back as synchronous standby "
                           f"{rejoined:.1f} s later")
        log(f"fault: {self.events[-1]}")


class Unavailability:
    """How long a server's /healthz (a statement on the primary) answered other than 200,
    from the first such answer to the first 200 after it, sampled every 100 ms."""

    def __init__(self, server: Server):
        self.server = server
        self.first_bad: float | None = None
        self.back: float | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.1):
            ok = self.server.healthy()
            now = time.monotonic()
            if not ok and self.first_bad is None:
                self.first_bad = now
            elif ok and self.first_bad is not None and self.back is None:
                self.back = now

    def stop(self) -> float:
        self.done.set()
        self.thread.join(timeout=5)
        if self.first_bad is None:
            return 0.0
        return (self.back or time.monotonic()) - self.first_bad


def monitor(servers: list[Server], stop: threading.Event, violations: list[str],
            lock: threading.Lock) -> None:
    """Samples memory, and restarts a server that died without being killed (a violation:
    the servers must survive database outages by reconnecting)."""
    while not stop.wait(0.5):
        with lock:
            for s in servers:
                s.sample_memory()
                if not s.alive() and not s.expected_down:
                    violations.append(f"server {s.label} exited by itself (code {s.proc.returncode}); see {s.log_path}")
                    log(f"server {s.label} died by itself; restarting it")
                    s.start()


# ---------------------------------------------------------------------------------------
# Checks, from the database
# ---------------------------------------------------------------------------------------


def wait_no_open_transactions(admin_url: str, seconds: float) -> list[str]:
    """Connections idle in a transaction (an abandoned request that left its transaction
    open holds locks and a pooled connection forever), or in one for a long while (stuck
    on a lock). They may take a moment to go."""
    deadline = time.monotonic() + seconds
    while True:
        rows = psql(admin_url, """
            select pid, datname, application_name, state, now() - xact_start, left(query, 120)
            from pg_stat_activity
            where pid <> pg_backend_pid() and backend_type = 'client backend'
              and (state like 'idle in transaction%' or xact_start < now() - interval '60 seconds')""")
        if not rows or time.monotonic() > deadline:
            return [f"transaction left open: {' | '.join(r)}" for r in rows]
        time.sleep(1)


def check_reservations(url: str, baseline: int, record: Record) -> tuple[list[str], int]:
    """Returns the violations and how many attempts of unknown outcome did reserve."""
    v: list[str] = []
    rows = psql(url, f"""
        select id, customer_id, pool_id, unit_count, extract(epoch from lower(during))::bigint,
               extract(epoch from upper(during))::bigint, state
        from reservation where id > {baseline} and resale_listing_id is null
         and coalesce(request_key, '') not like 'standing order %'
         and id not in (select accepted_reservation_id from incident_offer
                         where accepted_reservation_id is not null) order by id""")
    db = {int(r[0]): (int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), r[6]) for r in rows}
    by_tuple = {(a.org, a.pool, a.units, a.start): a for a in record.attempts.values()}

    # Every reservation made during the run was asked for, once, and not refused.
    made_by: dict[str, list[int]] = collections.defaultdict(list)
    for rid, (org, pool, units, start, _end, _state) in db.items():
        att = by_tuple.get((org, pool, units, start))
        if att is None:
            v.append(f"reservation {rid} {(org, pool, units, iso(start))} matches no request the clients sent")
            continue
        made_by[att.key].append(rid)
        if att.outcome == "refused":
            v.append(f"reservation {rid} exists though its request (key {att.key}) was refused "
                     f"with {att.status} {att.code}")
        elif att.outcome == "acked" and att.res_id != rid:
            v.append(f"reservation {rid} exists for key {att.key}, which was acknowledged as {att.res_id}")
    for key, ids in made_by.items():
        if len(ids) > 1:
            v.append(f"key {key} created {len(ids)} reservations: {ids}")
    unknown_made = sum(1 for key in made_by if record.attempts[key].outcome == "unknown")

    # Every acknowledged reservation exists as acknowledged.
    for b in record.bookings.values():
        row = db.get(b.id)
        if row is None:
            v.append(f"acknowledged reservation {b.id} (key {b.key}) is missing")
            continue
        org, pool, units, start, end, state = row
        if (org, pool, units, start) != (b.org, b.pool, b.units, b.start):
            v.append(f"reservation {b.id} is {(org, pool, units, iso(start))}, acknowledged as "
                     f"{(b.org, b.pool, b.units, iso(b.start))}")
        if end != b.end and end not in b.possible_ends:
            v.append(f"reservation {b.id} ends {iso(end)}, acknowledged end {iso(b.end)}")
        if b.cancelled and state != "cancelled":
            v.append(f"reservation {b.id}: cancellation acknowledged, state is {state}")
        if not b.cancelled and not b.cancel_unknown and state != "confirmed":
            v.append(f"reservation {b.id} is {state}, though no cancellation of it was acknowledged "
                     f"or left without an answer")
    v += check_market(url, baseline, record)
    return v, unknown_made


def check_market(url: str, baseline: int, record: Record) -> list[str]:
    """Resales, standing orders and holds: every acknowledged purchase exists as
    acknowledged and no purchase exists that was not asked for; each filled order made one
    reservation that fills it; no hold outlives its time by more than the release job's
    period (with slack for a fault)."""
    v: list[str] = []
    bought = {int(r[0]): (int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in psql(url, f"""
        select id, customer_id, pool_id, unit_count, extract(epoch from lower(during))::bigint,
               extract(epoch from upper(during))::bigint
          from reservation where id > {baseline} and resale_listing_id is not null""")}
    for rid, want in record.purchases.items():
        if bought.get(rid) != want:
            v.append(f"resale purchase {rid} acknowledged as {want}, the database has {bought.get(rid)}")
    extra = set(bought) - set(record.purchases)
    if len(extra) > record.purchases_unknown:
        v.append(f"{len(extra)} resale purchases exist that no buyer was told of "
                 f"(only {record.purchases_unknown} answers were lost): {sorted(extra)[:10]}")
    for r in psql(url, """
        select o.id, o.customer_id, count(r.id)
          from standing_order o
          left join reservation r on r.customer_id = o.customer_id
                                 and r.request_key = 'standing order ' || o.id
         group by o.id, o.customer_id, o.state, o.reservation_id
        having count(r.id) > 1 or (o.state = 'filled') <> (count(r.id) = 1 and bool_and(r.id = o.reservation_id))"""):
        v.append(f"standing order {r[0]} of organization {r[1]} made {r[2]} reservations, "
                 f"not as its state says")
    for r in psql(url, """
        select id, held_until from reservation
         where state = 'held' and held_until < now() - interval '40 seconds' limit 10"""):
        v.append(f"hold {r[0]} expired at {r[1]} and was never released")
    return v


def check_idempotency(url: str, record: Record) -> tuple[list[str], int]:
    """A refused key must not map to a reservation; an acknowledged key maps to its own."""
    v: list[str] = []
    rows = psql(url, """
        select organization_id, key, state, coalesce(status::text, ''),
               case when status between 200 and 299
                    then coalesce(convert_from(body, 'UTF8')::jsonb ->> 'id', '') else '' end
        from idempotency_key where key like 'harness-%' and key not like 'harness-ge-%'""")
    running = 0
    for org, key, state, status, rid in rows:
        att = record.attempts.get(key)
        if state == "running":
            running += 1
        if att is None or int(org) != att.org:
            v.append(f"idempotency key {key} of organization {org} was never sent by that organization")
            continue
        if att.outcome == "refused" and status.startswith("2"):
            v.append(f"key {key} was refused ({att.status} {att.code}) but the server recorded {status} (reservation {rid})")
        if att.outcome == "acked" and status.startswith("2") and rid != str(att.res_id):
            v.append(f"key {key} was acknowledged as {att.res_id}, the server recorded reservation {rid}")
    return v, running


def check_allocations(url: str) -> list[str]:
    v = []
    # The exclusion constraint forbids this; checked anyway, it is the promise.
    for r in psql(url, """
            select a.unit_id, a.id, b.id, a.during, b.during from allocation a
            join allocation b on a.unit_id = b.unit_id and a.id < b.id and a.during && b.during
            limit 20"""):
        v.append(f"unit {r[0]} double-booked: allocations {r[1]} {r[3]} and {r[2]} {r[4]}")
    # All or nothing: a live reservation's held and cut unit-hours make up its units over its
    # whole window, and nothing it holds lies outside it; a cancelled one holds nothing.
    for r in psql(url, """
            with h as (
                select r.id, r.state, r.unit_count,
                       r.unit_count * extract(epoch from upper(r.during) - lower(r.during)) / 3600 as sold,
                       coalesce((select sum(extract(epoch from upper(a.during) - lower(a.during)) / 3600)
                                   from allocation a where a.reservation_id = r.id), 0) as held,
                       coalesce((select sum(extract(epoch from upper(c.during) - lower(c.during)) / 3600)
                                   from allocation_cut c where c.reservation_id = r.id), 0) as cut,
                       exists (select 1 from allocation a where a.reservation_id = r.id
                                and not r.during @> a.during) as outside
                  from reservation r)
            select id, state, unit_count, sold, held, cut from h
             where (state = 'cancelled' and held <> 0)
                or (state <> 'cancelled' and (held + cut <> sold or outside))
             limit 20"""):
        v.append(f"reservation {r[0]} ({r[1]}, {r[2]} units): {r[3]} unit-hours sold, {r[4]} held, {r[5]} cut")
    # A firm reservation keeps every hour it was sold: only incidents may cut it.
    for r in psql(url, """
            select c.reservation_id, c.reason, c.during from allocation_cut c
              join reservation r on r.id = c.reservation_id
             where r.tier = 'firm' and c.reason not in ('incident', 'resold') limit 20"""):
        v.append(f"firm reservation {r[0]} lost {r[2]} to {r[1]}")
    return v


def check_incidents(url: str) -> list[str]:
    """Every unit-hour an incident cut is recorded as lost by it, and every firm one lost
    was credited (unless the reservation had nothing left to credit, or was bought on
    resale, whose money went to its seller). Moved hours are held by the reservation on
    another unit, which check_allocations' coverage check already proves."""
    v = []
    for r in psql(url, """
            with lost as (select reservation_id, sum(range_hours(during)) h from incident_hit
                           where outcome = 'lost' group by 1),
                 cut as (select reservation_id, sum(range_hours(during)) h from allocation_cut
                          where reason = 'incident' group by 1),
                 credited as (select reservation_id, sum(unit_hours) h from reservation_credit
                               where reason = 'incident' group by 1)
            select r.id, r.tier, coalesce(lost.h, 0), coalesce(cut.h, 0), coalesce(credited.h, 0)
              from reservation r
              left join lost on lost.reservation_id = r.id
              left join cut on cut.reservation_id = r.id
              left join credited on credited.reservation_id = r.id
             where coalesce(lost.h, 0) <> coalesce(cut.h, 0)
                or (r.tier = 'firm' and r.state = 'confirmed' and r.resale_listing_id is null
                    and coalesce(lost.h, 0) <> coalesce(credited.h, 0)
                    and r.total_cents - r.credited_cents - coalesce(r.refund_cents, 0) > 0)
             limit 20"""):
        v.append(f"reservation {r[0]} ({r[1]}): incidents recorded {r[2]} unit-hours lost, "
                 f"{r[3]} cut, {r[4]} credited")
    # A unit under an open incident serves no reservation over the incident's hours.
    for r in psql(url, """
            select i.id, a.reservation_id from incident i
              join incident_unit iu on iu.incident_id = i.id
              join allocation a on a.unit_id = iu.unit_id and a.reservation_id is not null
                               and a.during && i.during
             where i.state = 'open' limit 20"""):
        v.append(f"open incident {r[0]}: reservation {r[1]} still holds its unit")
    return v


def postgres_log_counts(offsets: dict[Path, int]) -> dict:
    """What PostgreSQL said during the run (every member's log, from `offsets`): deadlocks
    it broke (each costs a waiter its deadlock_timeout), lock waits a booking's exact path
    gave up at its bound (each costs that booking a retry) and fatal messages (expected
    around the immediate shutdowns and failovers)."""
    text = ""
    for log_path, offset in offsets.items():
        try:
            with open(log_path, "rb") as f:
                f.seek(offset)
                text += f.read().decode(errors="replace")
        except OSError:
            continue
    return {
        "deadlocks_detected": text.count("ERROR:  deadlock detected"),
        "lock_waits_given_up": text.count("ERROR:  canceling statement due to lock timeout"),
        "exclusion_conflicts": text.count("violates exclusion constraint"),
        "fatal_lines": text.count("FATAL:"),
        "panic_lines": text.count("PANIC:"),
    }


def check_ledger(url: str, server_bin: Path) -> tuple[list[str], str]:
    v = []
    for r in psql(url, """
            select t.id, t.kind, coalesce(sum(e.amount_cents), 0), count(e.id)
            from ledger_transaction t left join ledger_entry e on e.transaction_id = t.id
            group by t.id having coalesce(sum(e.amount_cents), 0) <> 0 or count(e.id) < 2
            limit 20"""):
        v.append(f"ledger transaction {r[0]} ({r[1]}) sums to {r[2]} cents over {r[3]} entries")
    for r in psql(url, "select currency, sum(amount_cents) from ledger_entry group by currency having sum(amount_cents) <> 0"):
        v.append(f"the ledger sums to {r[1]} cents in {r[0]}")
    env = dict(os.environ, DATABASE_URL=url, RUST_LOG="warn")
    r = subprocess.run([str(server_bin), "reconcile"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    summary = (r.stdout.strip() or r.stderr.strip()).splitlines()
    if r.returncode != 0:
        v.append(f"server reconcile exited {r.returncode}: " + " / ".join((r.stdout + r.stderr).strip().splitlines()[:10]))
    return v, summary[0] if summary else ""


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def scan_logs(servers: list[Server]) -> tuple[list[str], collections.Counter]:
    """Panics are violations; error lines are counted (expected during outages)."""
    v, levels = [], collections.Counter()
    for s in servers:
        try:
            text = ANSI.sub("", s.log_path.read_text(errors="replace"))
        except OSError:
            continue
        for line in text.splitlines():
            if "panicked" in line:
                v.append(f"server {s.label} panicked: {line.strip()[:300]}")
            for level in ("ERROR", "WARN"):
                if f" {level} " in line:
                    levels[(s.label, level)] += 1
    return v, levels


# ---------------------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------------------


def customer_keys(url: str, server_bin: Path, how_many: int) -> dict[int, str]:
    orgs = psql(url, f"select id, name from organization where kind = 'customer' order by id limit {how_many}")
    if len(orgs) < 2:
        raise HarnessError(f"the demo market has {len(orgs)} customer organizations; need at least 2")
    keys = {int(org_id): create_key(url, server_bin, org_id, name, "read,reserve") for org_id, name in orgs}
    log(f"API keys for {', '.join(n for _, n in orgs)}")
    return keys


def operator_keys(url: str, server_bin: Path, operators: set[int]) -> dict[int, str]:
    """Keys with the operate scope for the operators of the hot pools' sites (grid events)."""
    if not operators:
        return {}
    orgs = psql(url, f"select id, name from organization where id in ({','.join(map(str, sorted(operators)))})")
    return {int(org_id): create_key(url, server_bin, org_id, name, "read,operate") for org_id, name in orgs}


def create_key(url: str, server_bin: Path, org_id: str, name: str, scopes: str) -> str:
    env = dict(os.environ, DATABASE_URL=url, RUST_LOG="warn")
    r = subprocess.run(
        [str(server_bin), "create-key", "--org", org_id, "--name", "harness", "--scopes", scopes],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    key = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    if r.returncode != 0 or not key.startswith("rsk_"):
        raise HarnessError(f"create-key for {name} failed: {r.stderr.strip()}")
    return key


def load_pools(url: str, hot: int) -> list[Pool]:
    """Listed GPU pools of live sites; the smallest `hot` ones get most of the bookings, so
    reservations of several customers compete for the same nodes."""
    rows = psql(url, """
        select p.id, p.unit_count, p.gpus_per_node, p.min_lead_hours, p.min_term_hours, p.max_term_hours,
               (select extract(epoch from max(upper(w.during)))::bigint from availability_window w
                 where w.pool_id = p.id and w.during @> now() + interval '3 days'),
               s.id, s.operator_id, p.interruptible_price_cents is not null,
               (s.hashrate_th * coalesce(s.fleet_efficiency_j_th, 0) / 1000)::bigint
        from capacity_pool p join site s on s.id = p.site_id
        where p.listed and s.status = 'live' and p.kind = 'gpu'
        order by p.unit_count, p.id""")
    pools = [Pool(int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]),
                  site=int(r[7]), operator=int(r[8]), interruptible=r[9] == "t", fleet_kw=int(r[10]))
             for r in rows if r[6]]
    if len(pools) < hot:
        raise HarnessError(f"only {len(pools)} GPU pools on sale in the demo market")
    for p in pools[:hot]:
        p.hot = True
    return pools[: hot + 5]


def prepare(args, cluster: Cluster) -> str:
    cluster.start()
    log(f"PostgreSQL up: {cluster.admin_url}")
    psql(cluster.admin_url, f"drop database if exists {DB_NAME} with (force)")
    psql(cluster.admin_url, f"create database {DB_NAME}")
    if args.ha:
        # The replicated cluster preloads pg_stat_statements (server/harness/ha/patroni.yml).
        psql(cluster.url(DB_NAME), "create extension if not exists pg_stat_statements")
    return cluster.url(DB_NAME)


def top_statements(url: str, how_many: int = 8) -> list[str]:
    """The statements that took the most database time in the run (on the current primary:
    after a failover, since its promotion), from pg_stat_statements."""
    rows = psql(url, f"""
        select calls, round(mean_exec_time::numeric, 2), round(total_exec_time::numeric),
               left(regexp_replace(query, '\s+', ' ', 'g'), 100)
        from pg_stat_statements
        where dbid = (select oid from pg_database where datname = current_database())
        order by total_exec_time desc limit {how_many}""")
    return [f"{r[2]} ms total, {r[0]} calls, mean {r[1]} ms: {r[3]}" for r in rows]


# ---------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--duration", type=float, default=75, help="seconds of load")
    p.add_argument("--rate", type=float, default=50, help="operations per second, both servers together")
    p.add_argument("--workers", type=int, default=16, help="client threads")
    p.add_argument("--fault-every", type=float, default=15,
                   help="seconds between faults (kill A, database, kill B, database, ...)")
    p.add_argument("--no-faults", action="store_true", help="load only (a baseline)")
    p.add_argument("--ha", action="store_true",
                   help="run against the replicated cluster of ha_cluster.py (Patroni, etcd, HAProxy) "
                        "and fail its primary over instead of restarting PostgreSQL")
    p.add_argument("--kill-downtime", type=float, default=1.5, help="seconds a killed server stays down")
    p.add_argument("--db-downtime", type=float, default=4, help="seconds PostgreSQL stays down")
    p.add_argument("--abandon", type=float, default=0.05,
                   help="share of requests sent with a 2-30 ms client timeout and abandoned")
    p.add_argument("--timeout", type=float, default=30, help="client timeout of the other requests")
    p.add_argument("--retry-deadline", type=float, default=40,
                   help="how long a reserve retries a lost answer with its Idempotency-Key")
    p.add_argument("--customers", type=int, default=3, help="customer organizations booking")
    p.add_argument("--hot-pools", type=int, default=3, help="pools most bookings fight over")
    p.add_argument("--min-spread-hours", type=int, default=72,
                   help="least number of start hours bookings spread over (fewer: more contention)")
    p.add_argument("--seed", type=int, default=20261122, help="random seed of the workload")
    p.add_argument("--ports", default="auto",
                   help="ports of servers A and B, e.g. 3201,3202; auto: two free ones")
    p.add_argument("--server-bin", default=str(ROOT / "target" / "release" / "server"))
    p.add_argument("--report", help="also write the summary as JSON to this file")
    return p.parse_args(argv)


def _cause(history: list) -> str:
    """A try history such as [abandoned, in-use, in-use, ...] as 'abandoned, then in-use x8'."""
    first, rest = history[0], collections.Counter(history[1:])
    return first + (", then " + ", ".join(f"{k} x{n}" for k, n in rest.items()) if rest else "")


class Run:
    def __init__(self, args):
        self.args = args
        self.server_bin = Path(args.server_bin)
        self.cluster = (HaDatabase(WORK_DIR / "ha") if args.ha
                        else Cluster(self.server_bin, WORK_DIR / "pg-cluster"))
        self.servers: list[Server] = []
        self.record = Record()
        self.faults = FaultWindows()
        self.violations: list[str] = []
        self.degenerate: list[str] = []
        self.server_lock = threading.Lock()
        self.injector: FaultInjector | None = None
        self.info: dict = {}

    def setup(self) -> None:
        if not self.server_bin.is_file() or not (ROOT / "target" / "site" / "pkg").is_dir():
            raise HarnessError("build first: cargo leptos build --release (target/release/server, target/site/pkg)")
        if not shutil.which("psql"):
            raise HarnessError("psql not found (apt-get install postgresql-client)")
        ports = free_ports(2) if self.args.ports == "auto" else [int(x) for x in self.args.ports.split(",")]
        for port in ports:
            if port_in_use(port):
                raise HarnessError(f"port {port} is in use; is another harness running?")
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        self.db_url = prepare(self.args, self.cluster)
        for label, port in zip("AB", ports):
            log_path = WORK_DIR / f"server-{label}.log"
            log_path.write_bytes(b"")
            extra = {}
            if self.args.ha and label == "B":
                # B serves visitors' market pages from the replicas while they are fresh.
                extra["RIGSHIFT_READ_DATABASE_URL"] = self.cluster.ha.url(DB_NAME, replicas=True)
            self.servers.append(Server(label, port, self.server_bin, self.db_url, log_path, extra))
        # A first: it migrates and loads the demo market; B then finds it populated.
        for s in self.servers:
            s.start()
            if not s.wait_healthy(180):
                raise HarnessError(f"server {s.label} did not become healthy; see {s.log_path}")
            log(f"server {s.label} up on port {s.port} (pid {s.proc.pid})")
        self.keys = customer_keys(self.db_url, self.server_bin, self.args.customers)
        self.pools = load_pools(self.db_url, self.args.hot_pools)
        self.operator_keys = operator_keys(self.db_url, self.server_bin,
                                           {p.operator for p in self.pools if p.hot})
        self.baseline = int(psql(self.db_url, "select coalesce(max(id), 0) from reservation")[0][0])

    def load(self) -> None:
        w = Workload(self.args, self.servers, self.keys, self.pools, self.record, self.faults,
                     self.operator_keys)
        log(f"load: {self.args.rate:g} ops/s for {self.args.duration:g} s, {self.args.workers} workers, "
            f"hot pools {[p.id for p in w.hot]}, starts over {w.spread_h} h from {iso(w.base_start)}")
        stop_monitor = threading.Event()
        mon = threading.Thread(target=monitor, args=(self.servers, stop_monitor, self.violations,
                                                     self.server_lock), daemon=True)
        mon.start()
        self.injector = FaultInjector(self.args, self.cluster, self.servers, self.faults,
                                      self.violations, self.server_lock)
        for s in self.servers:
            s.sample_memory()
        self.info["rss_mib_at_load_start"] = {s.label: round(s.rss_kb / 1024, 1) for s in self.servers}
        pg_logs = {p: (p.stat().st_size if p.exists() else 0) for p in self.cluster.log_paths()}
        started = time.monotonic()
        fault_thread = None
        if not self.args.no_faults:
            fault_thread = threading.Thread(target=self.injector.run, args=(started,), daemon=True)
            fault_thread.start()
        workers = [threading.Thread(target=w.run_worker, args=(i,), daemon=True)
                   for i in range(self.args.workers)]
        for t in workers:
            t.start()
        patience = self.args.retry_deadline + self.args.timeout + 10
        try:
            while time.monotonic() - started < self.args.duration:
                time.sleep(0.5)
        except KeyboardInterrupt:
            patience = 2  # Ctrl-C: clean up now, the report is moot
            raise
        finally:
            w.stop.set()
            self.injector.stop.set()
            # In-flight reserves finish their retries, so their outcome is known.
            for t in workers:
                t.join(timeout=patience)
            if fault_thread:
                fault_thread.join(timeout=180)
            self.load_seconds = time.monotonic() - started
            self.info["postgresql_log"] = postgres_log_counts(pg_logs)
            stop_monitor.set()
            mon.join(timeout=5)
        self.info["spread_hours"] = w.spread_h

    def settle_and_check(self) -> None:
        for s in self.servers:
            if not s.wait_healthy(60):
                self.violations.append(f"server {s.label} not healthy after the load; see {s.log_path}")
        time.sleep(2)
        # While the servers still run: their pools hold the connections that matter.
        self.violations += wait_no_open_transactions(self.cluster.admin_url, 10)
        for s in self.servers:
            s.sample_memory()
        v, self.info["unknown_outcomes_that_reserved"] = check_reservations(self.db_url, self.baseline, self.record)
        self.violations += v
        v, self.info["keys_left_running"] = check_idempotency(self.db_url, self.record)
        self.violations += v
        self.violations += check_allocations(self.db_url)
        self.violations += check_incidents(self.db_url)
        self.info["incidents"] = {r[0]: int(r[1]) for r in psql(self.db_url, """
            select outcome, sum(range_hours(during))::bigint from incident_hit group by 1 order by 1""")}
        self.info["unit_hours_cut"] = {r[0]: int(r[1]) for r in psql(self.db_url, """
            select reason, sum(extract(epoch from upper(during) - lower(during)) / 3600)::bigint
              from allocation_cut group by 1 order by 1""")}
        if self.args.ha:
            self.info["top_statements"] = top_statements(self.db_url)
        v, self.info["reconcile"] = check_ledger(self.db_url, self.server_bin)
        self.violations += v
        v, self.info["log_levels"] = scan_logs(self.servers)
        self.violations += v
        self.violations += [f"unexpected failure: {u}" for u in self.record.unexpected[:20]]
        if len(self.record.unexpected) > 20:
            self.violations.append(f"... and {len(self.record.unexpected) - 20} more unexpected failures")
        self.violations += [f"anomaly: {a}" for a in self.record.anomalies]
        self.violations += [f"harness error: {e}" for e in self.record.harness_errors]
        self.check_not_degenerate()

    def check_not_degenerate(self) -> None:
        acked = sum(1 for a in self.record.attempts.values() if a.outcome == "acked")
        refused = sum(1 for a in self.record.attempts.values() if a.outcome == "refused")
        if acked == 0:
            self.degenerate.append("no reservation was acknowledged")
        if refused == 0:
            self.degenerate.append("no reservation was refused: the pools were not contended")
        if self.record.cancels_acked == 0:
            self.degenerate.append("no cancellation was acknowledged")
        if self.record.interruptible_acked == 0:
            self.degenerate.append("no interruptible reservation was acknowledged")
        if self.record.grid_events_acked + self.record.grid_events_refused == 0:
            self.degenerate.append("no grid event was answered")
        if self.record.holds_acked == 0:
            self.degenerate.append("no hold was acknowledged")
        done = sum(n for (_, cls), n in self.record.requests.items() if cls == "2xx")
        if done < self.args.rate * self.args.duration * 0.3:
            self.degenerate.append(f"only {done} requests succeeded of about {self.args.rate * self.args.duration:.0f} planned")
        if not self.args.no_faults and self.args.duration - 10 >= 2 * self.args.fault_every:
            db_faults = len(self.injector.failovers) if self.args.ha else self.injector.db_restarts
            if self.injector.kills == 0 or db_faults == 0:
                self.degenerate.append(f"planned faults not injected ({self.injector.kills} kills, "
                                       f"{db_faults} database faults)")

    def teardown(self) -> None:
        for s in self.servers:
            try:
                s.expected_down = True
                s.stop()
            except Exception as e:  # keep going: the cluster must stop too
                log(f"could not stop server {s.label}: {e!r}")
        self.cluster.stop()
        log("servers and PostgreSQL stopped")

    # -- the report ---------------------------------------------------------------------

    def summary(self) -> dict:
        rec = self.record
        outcomes = collections.Counter(a.outcome for a in rec.attempts.values())
        kinds = list(OPERATIONS)
        table = {k: {c: rec.requests[(k, c)] for c in STATUS_CLASSES} for k in kinds}
        total = sum(rec.requests.values())
        inj = self.injector
        return {
            "date": iso(int(time.time())),
            "args": {k: v for k, v in vars(self.args).items()},
            "load_seconds": round(getattr(self, "load_seconds", 0.0), 1),
            "requests_total": total,
            "requests_per_second": round(total / max(getattr(self, "load_seconds", 1.0), 1.0), 1),
            "requests": table,
            "latency_ms": rec.latency_ms(),
            "problems": {f"{k} {s} {c}": n for (k, s, c), n in sorted(rec.problems.items(), key=lambda x: -x[1])[:15]},
            "reservations": {
                "attempts": len(rec.attempts),
                "acknowledged": outcomes["acked"],
                "refused": outcomes["refused"],
                "unknown_outcome": outcomes["unknown"],
                "replayed_answers": rec.replays,
                "cancels_acknowledged": rec.cancels_acked,
                "extensions_acknowledged": rec.extends_acked,
                "interruptible_acknowledged": rec.interruptible_acked,
            },
            "grid_events": {
                "acknowledged": rec.grid_events_acked,
                "refused": rec.grid_events_refused,
            },
            "incidents": {
                "opened": rec.incidents_acked,
                "resolved": rec.incidents_resolved,
            },
            "market": {
                "holds_acknowledged": rec.holds_acked,
                "holds_confirmed": rec.holds_confirmed,
                "resales_acknowledged": len(rec.purchases),
                "resale_answers_lost": rec.purchases_unknown,
                "orders_left": len(rec.orders_acked),
            },
            "unknown_outcomes_by_cause": dict(collections.Counter(
                _cause(a.history) for a in rec.attempts.values() if a.outcome == "unknown").most_common(8)),
            "faults": {
                "server_kills": inj.kills if inj else 0,
                "database_restarts": inj.db_restarts if inj else 0,
                "failovers": inj.failovers if inj else [],
                "events": inj.events if inj else [],
            },
            "peak_memory_mib": {
                s.label: round(max(s.peak_hwm_kb, s.peak_rss_kb) / 1024, 1) for s in self.servers
            },
            "server_starts": {s.label: s.incarnations for s in self.servers},
            "info": {k: (dict((f"{a} {b}", n) for (a, b), n in v.items()) if isinstance(v, collections.Counter) else v)
                     for k, v in self.info.items()},
            "violations": self.violations,
            "degenerate": self.degenerate,
        }

    def print_summary(self, s: dict) -> None:
        out = []
        out.append("")
        out.append("== Rigshift load and fault harness ==")
        out.append(f"load {s['load_seconds']} s, {s['requests_total']} requests ({s['requests_per_second']}/s; "
                   f"target {self.args.rate:g} ops/s), {self.args.workers} workers, 2 servers")
        out.append(f"  {'kind':<8}" + "".join(f"{c:>10}" for c in STATUS_CLASSES) + f"{'total':>10}")
        for kind, row in s["requests"].items():
            out.append(f"  {kind:<8}" + "".join(f"{row[c]:>10}" for c in STATUS_CLASSES) + f"{sum(row.values()):>10}")
        out.append("  latency of answered requests (ms): " + "; ".join(
            f"{k} p50 {v['p50']} p95 {v['p95']} p99 {v['p99']} max {v['max']}" for k, v in s["latency_ms"].items()))
        if s["problems"]:
            out.append("  most frequent problem answers: " + "; ".join(f"{k} x{n}" for k, n in s["problems"].items()))
        r = s["reservations"]
        out.append(f"reservations: {r['attempts']} attempts, {r['acknowledged']} acknowledged, {r['refused']} refused, "
                   f"{r['unknown_outcome']} with unknown outcome; {r['replayed_answers']} replayed answers; "
                   f"{r['cancels_acknowledged']} cancels and {r['extensions_acknowledged']} extensions acknowledged")
        if s["unknown_outcomes_by_cause"]:
            out.append("  unknown outcomes, by what the tries got: " +
                       "; ".join(f"{k}: {n}" for k, n in s["unknown_outcomes_by_cause"].items()))
        f = s["faults"]
        if self.args.ha:
            fo = f["failovers"]
            out.append(f"faults injected: {f['server_kills']} server kills (SIGKILL), {len(fo)} failovers "
                       f"(SIGKILL of the primary's PostgreSQL and Patroni)")
            if fo:
                worst = lambda k: max(e[k] for e in fo)
                out.append(f"  failover: writable through HAProxy after at most {worst('promoted_after_s')} s, "
                           f"/healthz 503 for at most {worst('api_503_s')} s, old primary back as "
                           f"synchronous standby within {worst('rejoined_as_sync_standby_after_s')} s")
        else:
            out.append(f"faults injected: {f['server_kills']} server kills (SIGKILL), {f['database_restarts']} "
                       f"PostgreSQL immediate shutdowns")
        for e in f["events"][:4]:
            out.append(f"  {e}")
        if len(f["events"]) > 4:
            out.append(f"  ... {len(f['events']) - 4} more (all in the --report file)")
        out.append("peak memory (RSS high-water mark, VmHWM, over every start of each server): " +
                   ", ".join(f"server {k} {v} MiB" for k, v in s["peak_memory_mib"].items()))
        for k, v in s["info"].items():
            if isinstance(v, list):
                out.append(f"{k}:")
                out += [f"  {x}" for x in v]
            else:
                out.append(f"{k}: {v}")
        out.append(f"violations: {len(s['violations'])}")
        for v in s["violations"]:
            out.append(f"  - {v}")
        if s["degenerate"]:
            out.append("degenerate run: " + "; ".join(s["degenerate"]))
        print("\n".join(out), flush=True)


def _interrupt(signum, frame):
    # SIGTERM (say, from CI) cleans up like Ctrl-C does.
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    run = Run(args)
    interrupted = False
    try:
        run.setup()
        run.load()
        run.settle_and_check()
    except HarnessError as e:
        log(f"harness error: {e}")
        run.degenerate.append(str(e))
    except KeyboardInterrupt:
        log("interrupted")
        interrupted = True
    finally:
        run.teardown()
    if interrupted:
        return 130
    s = run.summary()
    run.print_summary(s)
    if args.report:
        Path(args.report).write_text(json.dumps(s, indent=2) + "\n")
    if run.violations:
        return 1
    return 2 if run.degenerate else 0


if __name__ == "__main__":
    sys.exit(main())
