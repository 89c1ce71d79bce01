"""Run a command and measure its wall time, CPU time and peak memory (summed over its process tree)."""

from __future__ import annotations

import subprocess
import threading
import time

import psutil


def measure(cmd: list[str], *, env: dict | None = None, cwd: str | None = None) -> dict:
    """Wall seconds, CPU seconds (user+system, children included) and peak memory (PSS) of the process tree."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    cpu: dict[int, float] = {}
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                procs = [ps, *ps.children(recursive=True)]
                rss = 0
                for p in procs:
                    try:
                        # PSS, not RSS: forked workers share their parent's pages, and summing RSS would count
                        # every shared page once per process
                        try:
                            rss += p.memory_full_info().pss
                        except (psutil.AccessDenied, AttributeError):
                            rss += p.memory_info().rss
                        t = p.cpu_times()
                        cpu[p.pid] = t.user + t.system
                    except psutil.Error:
                        pass
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.2)  # reading smaps costs CPU of its own: not too often

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    out, _ = proc.communicate()
    done.set()
    th.join()
    wall = time.perf_counter() - start
    return {"wall_s": wall, "cpu_s": sum(cpu.values()), "peak_rss_mb": peak / 2**20, "rc": proc.returncode,
            "output": out}


def table(title: str, rows: list[tuple[str, str]]) -> str:
    """A plain two-column table for benchmark output."""
    width = max(len(k) for k, _ in rows)
    lines = [title, "-" * len(title)]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)
