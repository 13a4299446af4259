#!/usr/bin/env python3
"""Every benchmark in one run, each figure next to its target.

Runs, one after the other on this machine:
  1. `cargo bench -p server --bench settlement`: settlement throughput with pgbench on the
     same cluster, then market search and the 90-day timeline on the generated market
     (5,000 sites, 20,000 pools, 1,000,000 allocations);
  2. `cargo bench -p server --bench pages`: the server-rendered market page under 64
     connections next to a static asset, and the browser bundle as each page first loads it;
  3. `server/harness/load_fault.py --no-faults`: two release servers on one PostgreSQL under
     the mixed HTTP workload, for the servers' memory under load.

Prints one table (Markdown) and, with `--write`, puts it at the top of BENCHMARKS.md with
the machine and the date. Needs the release build first (`cargo leptos build
--release`) for the pages and the harness. Exits 1 when a figure misses its target.
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- latest full run: written by server/harness/benchmarks.py -->"
# The servers' peak resident memory under the harness's load, per process.
MEMORY_TARGET_MIB = 200.0


def run(cmd: list[str], env: dict | None = None) -> str:
    """Runs `cmd` in the repository, echoing its output, and returns its standard output."""
    print("$", " ".join(cmd), flush=True)
    p = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})},
                       stdout=subprocess.PIPE, text=True)
    sys.stdout.write(p.stdout)
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed with exit code {p.returncode}")
    return p.stdout


def number(pattern: str, text: str, what: str) -> float:
    m = re.search(pattern, text)
    if not m:
        raise SystemExit(f"could not read {what} from the output above (pattern {pattern!r})")
    return float(m.group(1).replace(",", ""))


class Table:
    def __init__(self):
        self.rows: list[tuple[str, str, str, str]] = []
        self.missed: list[str] = []

    def add(self, figure: str, result: str, target: str = "", met: bool | None = None):
        verdict = "" if met is None else ("met" if met else "**not met**")
        if met is False:
            self.missed.append(figure)
        self.rows.append((figure, result, target, verdict))

    def markdown(self) -> str:
        lines = ["| Figure | Result | Target | Verdict |", "| --- | --- | --- | --- |"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in self.rows]
        return "\n".join(lines)


def settlement(table: Table, seconds: int) -> None:
    out = run(["cargo", "bench", "-p", "server", "--bench", "settlement"],
              {"BENCH_SECONDS": str(seconds)})
    settle = number(r"settlement:\s+([\d.]+) committed", out, "settlement throughput")
    conflicts = int(number(r"committed reservations/s \((\d+) conflicts\)", out, "conflicts"))
    pgbench = number(r"pgbench:\s+([\d.]+) TPS", out, "pgbench TPS")
    ratio = settle / pgbench
    table.add(f"Settlement, 32 clients, one pool of 2,000 nodes, {seconds} s",
              f"{settle:,.0f} committed reservations/s ({conflicts} conflicts)")
    table.add("pgbench TPC-B-like, scale 10, 32 clients, same cluster", f"{pgbench:,.0f} TPS")
    table.add("Settlement ÷ pgbench", f"**{ratio:.2f}**", "≥ 0.60", ratio >= 0.6)
    preempt = number(r"settlement with preemption:\s+([\d.]+) committed", out, "settlement with preemption")
    preemptions = int(number(r"(\d+) preemptions\)", out, "preemptions"))
    table.add(f"Firm settlement, every window full, half of it interruptible (each booking preempts), {seconds} s",
              f"{preempt:,.0f} committed reservations/s ({preemptions:,} preemptions)")
    table.add("Settlement with preemption ÷ pgbench", f"**{preempt / pgbench:.2f}**", "≥ 0.40",
              preempt / pgbench >= 0.4)
    for name, label, target in [
        ("market search \\(window mode\\)", "Market search, 200 mixed queries (a third interruptible), generated market with tiers and resale listings", 15.0),
        ("resale offers beside each search", "Resale offers matching each of those searches (the search page's second query)", 15.0),
        ("market search, sold-out window", "Market search in a sold-out window (worst case)", 25.0),
        ("90-day timeline \\(one pool\\)", "90-day free-units timeline of one pool, 500 pools", 10.0),
    ]:
        m = re.search(name + r"\s+n=(\d+)\s+p50=\s*([\d.]+) ms\s+p95=\s*([\d.]+) ms\s+p99=\s*([\d.]+) ms", out)
        if not m:
            raise SystemExit(f"could not read '{label}' from the settlement benchmark")
        p50, p95, p99 = (float(m.group(i)) for i in (2, 3, 4))
        table.add(label, f"p50 {p50:.2f} ms, **p95 {p95:.2f} ms**, p99 {p99:.2f} ms",
                  f"p95 < {target:g} ms", p95 < target)


def pages(table: Table, seconds: int) -> None:
    out = run(["cargo", "bench", "-p", "server", "--bench", "pages"], {"BENCH_SECONDS": str(seconds)})
    line = r"\s+([\d.]+) req/s\s+p50\s+([\d.]+) ms\s+p99\s+([\d.]+) ms\s+errors (\d+)"
    figures = {}
    for key, name in [("asset", r"static asset /favicon.svg"), ("page", r"market page /")]:
        m = re.search(name + line, out)
        if not m:
            raise SystemExit(f"could not read the {key} figures from the pages benchmark")
        figures[key] = [float(m.group(i)) for i in (1, 2, 3, 4)]
    for key, label in [("asset", "Static asset `/favicon.svg`, 64 connections"),
                       ("page", "Server-rendered market page `/`, 64 connections")]:
        rps, p50, p99, errors = figures[key]
        table.add(label, f"{rps:,.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, {errors:.0f} errors")
    ratio = figures["page"][0] / figures["asset"][0]
    table.add("Market page ÷ static asset throughput", f"**{ratio:.2f}**", "≥ 0.25", ratio >= 0.25)
    raw = number(r"wasm main module\s+([\d.]+) KB raw", out, "the main module's size")
    gz = number(r"wasm main module\s+[\d.]+ KB raw, ([\d.]+) KB gzip", out, "the main module's gzip size")
    table.add("wasm main module (runtime and islands)", f"{raw:,.0f} KB raw, {gz:,.0f} KB gzip")
    loads = re.findall(r"first load of (\S+)\s+([\d.]+) KB raw, ([\d.]+) KB gzip \((\d+) chunks", out)
    worst = max(loads, key=lambda l: float(l[2]))
    # With islands every page loads one module (`every_page`); a split build lists pages.
    home = next((l for l in loads if l[0] in ("home", "every_page")), None)
    pool = next((l for l in loads if l[0] in ("pool", "every_page")), None)
    if home is None or pool is None:
        raise SystemExit("the pages benchmark printed no first load of the market page (home) or a pool's page")
    # Issue 20's budgets: the market and pool pages 300 KB, every other page 350 KB.
    for page, label, budget in [(home, "wasm a visitor of the market page downloads", 300),
                                (pool, "wasm of a pool's page (`pool`)", 300),
                                (worst, f"wasm of the largest first load (`{worst[0]}`)", 350)]:
        kb = float(page[2])
        table.add(label, f"{float(page[1]):,.0f} KB raw, **{kb:,.0f} KB gzip** (main + {page[3]} chunks)",
                  f"< {budget} KB gzip", kb < budget)
    table.add("wasm each page first downloads (KB gzip)",
              ", ".join(f"{l[0]} {float(l[2]):,.0f}" for l in sorted(loads, key=lambda l: float(l[2]))))


def memory(table: Table, seconds: int, rate: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "load.json"
        run([sys.executable, str(ROOT / "server/harness/load_fault.py"), "--no-faults",
             "--duration", str(seconds), "--rate", str(rate), "--report", str(report)])
        summary = json.loads(report.read_text())
    peak = max(summary["peak_memory_mib"].values())
    load = f"{summary['requests_total']:,} requests at {summary['requests_per_second']:,.0f}/s"
    table.add(f"Server memory under the mixed workload (two servers, {load})",
              f"peak RSS **{peak:.1f} MiB** per server", f"< {MEMORY_TARGET_MIB:g} MiB", peak < MEMORY_TARGET_MIB)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except OSError:
        mem = "? GiB"
    pg = subprocess.run(["/usr/lib/postgresql/15/bin/postgres", "--version"],
                        stdout=subprocess.PIPE, text=True).stdout.strip()
    return f"{os.cpu_count()} vCPU ({cpu}), {mem} RAM, {platform.platform()}, {pg}"


def write(section: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text()
    start = text.find(MARKER)
    if start >= 0:
        end = text.find("\n## ", text.find("\n## ", start) + 1)
        text = text[:start] + section + (text[end:] if end >= 0 else "\n")
    else:
        first = text.find("\n## ")
        text = text[:first + 1] + section + text[first:]
    path.write_text(text)
    print(f"written to {path}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=15, help="seconds of each throughput run")
    p.add_argument("--load-seconds", type=int, default=60, help="seconds of the harness load")
    p.add_argument("--load-rate", type=int, default=200, help="operations per second of the harness load")
    p.add_argument("--write", action="store_true", help="put the table at the top of BENCHMARKS.md")
    args = p.parse_args(argv)

    started = datetime.datetime.now(datetime.timezone.utc)
    table = Table()
    settlement(table, args.seconds)
    pages(table, max(5, args.seconds // 2))
    memory(table, args.load_seconds, args.load_rate)
    section = "\n".join([
        MARKER,
        f"## Latest full run: {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `python3 server/harness/benchmarks.py --write` (throughput runs {args.seconds} s). "
        f"Machine: {machine()}.",
        "",
        table.markdown(),
        "",
    ]) + "\n"
    print()
    print(section)
    if args.write:
        write(section)
    if table.missed:
        print("targets not met: " + "; ".join(table.missed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
