#!/usr/bin/env python3
"""Rigshift's replicated PostgreSQL on this machine, from Debian's packages: Patroni managing
two PostgreSQL members (a primary and a synchronous standby) with one etcd as its consensus
store, and HAProxy in front routing one port to the current primary and one to the
replicas by Patroni's REST health checks. Loopback ports only; run as root it runs every
process as the `postgres` system user (PostgreSQL refuses root), otherwise as the caller.
No container runtime.

    python3 server/harness/ha_cluster.py start     # prints the primary's and replicas' URLs
    python3 server/harness/ha_cluster.py status
    python3 server/harness/ha_cluster.py failover  # SIGKILL the primary and its Patroni
    python3 server/harness/ha_cluster.py stop

Its configuration files are server/harness/ha/patroni.yml (one per member) and
server/harness/ha/haproxy.cfg; the load and fault harness uses the same class in its HA
mode (`load_fault.py --ha`). State lives in .data/ha (--dir), a fresh cluster per start.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = Path(__file__).resolve().parent / "ha"
MEMBERS = ("pg1", "pg2")


class HaError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[ha {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def newest_pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                   key=lambda p: int(p.parent.parent.name))
    if not found:
        raise HaError("PostgreSQL's server binaries are not installed (apt-get install postgresql)")
    return found[-1].parent


def need(tool: str, package: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
    if not path:
        raise HaError(f"{tool} not found (apt-get install {package}; .ci/setup test installs it)")
    return path


class HaCluster:
    """The cluster's processes and the questions the harness asks of it."""

    def __init__(self, base: Path):
        self.base = base.resolve()
        self.procs: dict[str, subprocess.Popen] = {}
        self.pids: dict[str, int] = {}
        self.run_as = "postgres" if os.geteuid() == 0 else None
        self.ports: dict = {}

    # -- layout ----------------------------------------------------------------------------

    def load(self) -> None:
        """Adopts a cluster started by another process (the command line's `start`)."""
        self.ports = json.loads((self.base / "ports.json").read_text())
        self.pids = json.loads((self.base / "pids.json").read_text())

    def url(self, database: str, replicas: bool = False) -> str:
        port = self.ports["replica"] if replicas else self.ports["primary"]
        return f"postgres://postgres@127.0.0.1:{port}/{database}?sslmode=disable"

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def member_url(self, name: str, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.ports[name]['pg']}/{database}?sslmode=disable"

    def log_files(self) -> list[Path]:
        return [self.base / f"log-{m}" / "postgresql.log" for m in MEMBERS]

    def _write_configs(self) -> None:
        e1, e2, r1, r2, p1, p2, primary, replica = free_ports(8)
        self.ports = {"etcd": e1, "etcd_peer": e2, "primary": primary, "replica": replica,
                      "pg1": {"rest": r1, "pg": p1}, "pg2": {"rest": r2, "pg": p2}}
        (self.base / "ports.json").write_text(json.dumps(self.ports))
        bin_dir = newest_pg_bin()
        template = (TEMPLATES / "patroni.yml").read_text()
        for m in MEMBERS:
            text = (template.replace("{name}", m)
                    .replace("{rest_port}", str(self.ports[m]["rest"]))
                    .replace("{pg_port}", str(self.ports[m]["pg"]))
                    .replace("{etcd_port}", str(e1))
                    .replace("{data_dir}", str(self.base / f"data-{m}"))
                    .replace("{bin_dir}", str(bin_dir))
                    .replace("{base}", str(self.base)))
            (self.base / f"{m}.yml").write_text(text)
            (self.base / f"log-{m}").mkdir(exist_ok=True)
        hap = (TEMPLATES / "haproxy.cfg").read_text()
        for i, m in enumerate(MEMBERS, 1):
            hap = (hap.replace(f"{{name{i}}}", m)
                   .replace(f"{{pg_port{i}}}", str(self.ports[m]["pg"]))
                   .replace(f"{{rest_port{i}}}", str(self.ports[m]["rest"])))
        hap = hap.replace("{primary_port}", str(primary)).replace("{replica_port}", str(replica))
        (self.base / "haproxy.cfg").write_text(hap)

    def _chown(self) -> None:
        if self.run_as:
            shutil.chown(self.base, self.run_as, self.run_as)
            for p in self.base.rglob("*"):
                shutil.chown(p, self.run_as, self.run_as)

    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.base / f"{name}.out", "ab")
        kwargs = {}
        if self.run_as:
            kwargs = {"user": self.run_as, "group": self.run_as, "extra_groups": []}
        env = dict(os.environ, HOME=str(self.base))
        env.pop("PGPASSFILE", None)
        self.procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                            cwd=self.base, start_new_session=True, **kwargs)
        self.pids[name] = self.procs[name].pid
        (self.base / "pids.json").write_text(json.dumps(self.pids))

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 120) -> None:
        etcd = need("etcd", "etcd-server")
        patroni = need("patroni", "patroni")
        haproxy = need("haproxy", "haproxy")
        if self.base.exists():
            self.stop_leftovers()
            shutil.rmtree(self.base)
        self.base.mkdir(parents=True)
        self._write_configs()
        self._chown()
        os.chmod(self.base, 0o700)
        e, ep = self.ports["etcd"], self.ports["etcd_peer"]
        self._spawn("etcd", [
            etcd, "--name", "rigshift-dcs", "--data-dir", str(self.base / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{e}",
            "--advertise-client-urls", f"http://127.0.0.1:{e}",
            "--listen-peer-urls", f"http://127.0.0.1:{ep}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{ep}",
            "--initial-cluster", f"rigshift-dcs=http://127.0.0.1:{ep}",
            "--log-level", "warn"])
        self._wait(lambda: self._http_ok(f"http://127.0.0.1:{e}/health"), 30, "etcd to answer")
        # The first member bootstraps the cluster; the second clones it.
        self.start_member("pg1")
        self._wait(lambda: self.leader() == "pg1", timeout, "pg1 to bootstrap and lead")
        self.start_member("pg2")
        self._spawn("haproxy", [haproxy, "-f", str(self.base / "haproxy.cfg"), "-db"])
        self.wait_healthy(timeout)

    def start_member(self, name: str) -> None:
        self._spawn(name, [need("patroni", "patroni"), str(self.base / f"{name}.yml")])

    def wait_healthy(self, timeout: float) -> None:
        """A leader, a synchronous standby streaming from it, and HAProxy's primary port on a
        writable member."""
        self._wait(lambda: self.sync_standby() is not None, timeout, "a synchronous standby")
        self._wait(self.primary_port_writable, timeout, "HAProxy's primary port to reach the leader")

    def stop(self) -> None:
        """Stops HAProxy, then each Patroni (which stops its PostgreSQL cleanly), then etcd."""
        for name in ["haproxy", "pg2", "pg1", "etcd"]:
            pid = self.pids.get(name)
            if not pid or not _alive(pid):
                continue
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + 60
            while _alive(pid) and time.monotonic() < deadline:
                p = self.procs.get(name)
                if p:
                    p.poll()
                time.sleep(0.1)
        self.stop_leftovers()

    def stop_leftovers(self) -> None:
        """Kills whatever a previous start left running (by the pids it recorded, and any
        postmaster still on one of its data directories)."""
        pids_file = self.base / "pids.json"
        if pids_file.exists():
            for pid in json.loads(pids_file.read_text()).values():
                _signal_group(pid, signal.SIGKILL)
        for m in MEMBERS:
            pid = self.postmaster_pid(m)
            if pid:
                _kill(pid)

    # -- questions -------------------------------------------------------------------------

    def _http_ok(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                return r.status == 200
        except Exception:
            return False

    def cluster_view(self) -> list[dict]:
        for m in MEMBERS:
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{self.ports[m]['rest']}/cluster", timeout=1) as r:
                    return json.loads(r.read()).get("members", [])
            except Exception:
                continue
        return []

    def leader(self) -> str | None:
        for member in self.cluster_view():
            if member.get("role") == "leader" and member.get("state") == "running":
                return member["name"]
        return None

    def sync_standby(self) -> str | None:
        for member in self.cluster_view():
            if member.get("role") == "sync_standby" and member.get("state") in ("streaming", "running"):
                return member["name"]
        return None

    def primary_port_writable(self) -> bool:
        r = subprocess.run(["psql", self.admin_url, "-XAtqc", "select pg_is_in_recovery()"],
                           capture_output=True, text=True, timeout=10)
        return r.returncode == 0 and r.stdout.strip() == "f"

    def postmaster_pid(self, name: str) -> int | None:
        pidfile = self.base / f"data-{name}" / "postmaster.pid"
        try:
            return int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _wait(self, check, timeout: float, what: str) -> float:
        started = time.monotonic()
        while not check():
            if time.monotonic() - started > timeout:
                raise HaError(f"timed out after {timeout:.0f} s waiting for {what} (logs in {self.base})")
            time.sleep(0.2)
        return time.monotonic() - started

    # -- faults ----------------------------------------------------------------------------

    def kill_primary(self) -> str:
        """SIGKILL of the leader's Patroni and its PostgreSQL, as if its machine were lost.
        Returns the member killed."""
        leader = self.leader()
        if not leader:
            raise HaError("no leader to kill")
        pm = self.postmaster_pid(leader)
        _signal_group(self.pids[leader], signal.SIGKILL)
        if pm:
            _kill(pm)
        p = self.procs.get(leader)
        if p:
            p.wait()
        log(f"SIGKILL of {leader}'s Patroni and PostgreSQL (postmaster {pm})")
        return leader

    def wait_promoted(self, old: str, timeout: float = 120) -> tuple[str, float]:
        """Waits until another member leads and HAProxy's primary port writes to it."""
        took = self._wait(lambda: self.leader() not in (None, old) and self.primary_port_writable(),
                          timeout, "the standby's promotion")
        return self.leader(), took

    def rejoin(self, name: str, timeout: float = 180) -> float:
        """Starts the killed member's Patroni again: it rewinds and follows the new primary,
        and becomes its synchronous standby."""
        # Its postmaster's backends may outlive a SIGKILLed postmaster by a moment.
        self._wait(lambda: not _alive(self.postmaster_pid(name)), 30, f"{name}'s old PostgreSQL to be gone")
        self.start_member(name)
        return self._wait(lambda: self.sync_standby() == name, timeout,
                          f"{name} to rejoin as the synchronous standby")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["start", "status", "failover", "stop"])
    p.add_argument("--dir", default=str(ROOT / ".data" / "ha"), help="where the cluster lives")
    args = p.parse_args(argv)
    c = HaCluster(Path(args.dir))
    try:
        if args.command == "start":
            c.start()
            log(f"leader {c.leader()}, synchronous standby {c.sync_standby()}")
            print(f"primary:  {c.url('postgres')}")
            print(f"replicas: {c.url('postgres', replicas=True)}")
            print(f"stop with: python3 {Path(__file__).relative_to(ROOT)} stop --dir {args.dir}")
            return 0
        c.load()
        if args.command == "status":
            for m in c.cluster_view():
                print(f"{m['name']}: {m.get('role')} {m.get('state')} lag {m.get('lag', 0)}")
            return 0
        if args.command == "failover":
            old = c.kill_primary()
            new, took = c.wait_promoted(old)
            log(f"{new} promoted; primary port writable {took:.1f} s after the kill")
            took = c.rejoin(old)
            log(f"{old} rejoined as the synchronous standby in {took:.1f} s")
            return 0
        c.stop()
        log("stopped")
        return 0
    except HaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
