"""perf.procs: start pinned processes, account their CPU and memory, stop them all.

Every process the harness starts goes through `Procs.start`, in a new session
(its own process group), so `Procs.stop_all` can end it and all its children
by group, also on Ctrl-C. Nothing here matches processes by name.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field

TICK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child before exec: SIGTERM it if the harness dies without cleaning up (kill -9)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: str
    core: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, n: int = 15) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:]).strip()
        except OSError:
            return ""


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces
    return raw[raw.rindex(")") + 2:].split()


def group_pids(leader: int) -> list[int]:
    """The leader, every process of its process group, and its descendants."""
    parents: dict[int, int] = {}
    members = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = _stat(int(d))
        if st is None:
            continue
        pid, ppid, pgrp = int(d), int(st[1]), int(st[2])
        parents[pid] = ppid
        if pgrp == leader or pid == leader:
            members.add(pid)
    changed = True
    while changed:  # descendants that left the group (setsid in a child) still count
        changed = False
        for pid, ppid in parents.items():
            if ppid in members and pid not in members:
                members.add(pid)
                changed = True
    return sorted(members)


def cpu_seconds(leader: int) -> float:
    """utime+stime (and the reaped children's) of the whole group, in seconds."""
    total = 0
    for pid in group_pids(leader):
        st = _stat(pid)
        if st:
            # fields 14-17 of /proc/PID/stat: utime stime cutime cstime (index from state=0)
            total += int(st[11]) + int(st[12]) + int(st[13]) + int(st[14])
    return total / TICK


def rss_bytes(leader: int) -> int:
    """Resident memory of the whole group (sum of VmRSS)."""
    total = 0
    for pid in group_pids(leader):
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            pass
    return total


def core_times() -> dict[int, tuple[float, float]]:
    """Per core: (busy, total) jiffies from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                parts = line.split()
                vals = [int(v) for v in parts[1:]]
                idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
                total = sum(vals[:8])
                out[int(parts[0][3:])] = (total - idle, total)
    return out


def core_busy(before: dict, after: dict, core: int) -> float:
    if core not in before or core not in after:
        return 0.0
    busy = after[core][0] - before[core][0]
    total = after[core][1] - before[core][1]
    return busy / total if total > 0 else 0.0


@dataclass
class Procs:
    """Registry of everything started; stop_all ends every group it knows."""
    logdir: str
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, argv: list[str], core: int | None, env: dict | None = None,
              stdout_pipe: bool = False) -> Proc:
        if core is not None:
            argv = ["taskset", "-c", str(core)] + argv  # taskset execs: the pid is the command's
        log = os.path.join(self.logdir, f"{name}.log")
        logf = open(log, "ab")
        popen = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE if stdout_pipe else logf,
            stderr=logf,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            preexec_fn=die_with_parent,
        )
        logf.close()
        p = Proc(name, popen, log, core)
        self.procs.append(p)
        return p

    def stop(self, p: Proc, timeout: float = 5.0) -> None:
        if p.alive():
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # the leader may be gone while its workers linger: end the group for good
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.popen.wait(2)
        except subprocess.TimeoutExpired:
            pass
        if p.popen.stdout:
            p.popen.stdout.close()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self) -> None:
        for p in list(reversed(self.procs)):
            self.stop(p)


def wait_tcp(host: str, port: int, timeout: float, proc: Proc | None = None) -> bool:
    """True once something accepts on host:port; False on timeout or if proc died."""
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def port_free(host: str, port: int) -> bool:
    import socket
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no conflict
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()
