"""The line protocol between benchmarks/peers.py and its two workers (s4rec's, and RecBole's in
its own venv): standard library only, so that either interpreter can import it."""

from __future__ import annotations

import json
import resource
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

MARK = "@@PEERS "  # a worker's replies on stdout start with this; other output is logging


def reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(MARK + json.dumps(obj) + "\n")
    sys.stdout.flush()


def rss_now() -> int:
    """Resident set size of this process now, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return -1


def peak_rss() -> int:
    """Peak resident set size of this process so far, in bytes (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def serve(handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> None:
    """Answer JSON commands ``{"cmd": NAME, ...}`` on stdin with ``handlers[NAME](msg)`` plus
    the peak RSS, until ``quit``; a failing command is reported to the driver, not fatal."""
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        if msg["cmd"] == "quit":
            reply({"peak_rss": peak_rss(), "rss_now": rss_now()})
            return
        try:
            if msg["cmd"] not in handlers:
                raise ValueError(f"unknown command {msg['cmd']!r}")
            out = handlers[msg["cmd"]](msg)
        except Exception as e:  # reported to the driver, which records it
            reply({"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()})
            continue
        reply({**out, "peak_rss": peak_rss()})
