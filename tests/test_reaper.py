"""The reaper kills a SIGKILLed driver's processes: its children, grandchildren and own-session daemons."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rlvr.reaper import _alive, _stat, descendants

ROOT = Path(__file__).resolve().parents[1]

DRIVER = """
import signal, subprocess, sys, time
from rlvr.reaper import start_reaper
start_reaper()
# like Ray's head processes: a daemon in its own session, ignoring SIGTERM, and a worker with a child
subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                  "time.sleep(300)"], start_new_session=True)
subprocess.Popen([sys.executable, "-c", "import subprocess, time; subprocess.Popen(['sleep', '300']); "
                  "time.sleep(300)"])
time.sleep(2.0)  # the reaper has recorded them
print("ready", flush=True)
time.sleep(300)
"""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_sigkilled_driver_leaves_no_process(tmp_path):
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert driver.stdout.readline().strip() == "ready"
        tree = descendants(driver.pid)
        reaper = [p for p in tree if "rlvr.reaper" in _cmdline(p)]
        run = {p: s for p, s in tree.items() if p not in reaper}
        assert len(reaper) == 1 and len(run) == 3, {p: _cmdline(p) for p in tree}
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(p, s) for p, s in run.items()):
            time.sleep(0.2)
        left = {p: _cmdline(p) for p, s in run.items() if _alive(p, s)}
        assert not left, f"still running after the driver was killed: {left}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _stat(reaper[0]) is not None and _stat(reaper[0])[1] != "Z":
            time.sleep(0.2)
        assert _stat(reaper[0]) is None or _stat(reaper[0])[1] == "Z"  # the reaper exits too
    finally:
        if driver.poll() is None:
            driver.kill()
        for p in descendants(os.getpid()):
            if "time.sleep(300)" in _cmdline(p) or _cmdline(p).startswith("sleep 300"):
                os.kill(p, signal.SIGKILL)
