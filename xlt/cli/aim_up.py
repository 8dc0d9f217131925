"""`xlt aim-up`: Aim's UI, stopped whole.

`aim up` serves through a uvicorn child process. Ctrl-C in its terminal stops both, but a stop
sent to `aim up` alone (`kill PID`, a scheduler's SIGTERM, the SIGHUP of a closed SSH session)
leaves uvicorn serving, its port taken. Here both run in a process group of their own, and a
stop signal to xlt ends the whole group.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def aim_up(repo: str, host: str, port: int) -> int:
    aim = Path(sys.executable).with_name("aim")
    command = [str(aim), "up", "--repo", repo, "--host", host, "--port", str(port)]
    print(f"xlt aim-up: http://{host}:{port} for {Path(repo).resolve()} (Ctrl-C or kill {os.getpid()} stops it)",
          flush=True)
    server = subprocess.Popen(command, start_new_session=True)

    def stop(signum, frame):
        _end_group(server)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        code = server.wait()
    finally:
        _end_group(server)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code


def _end_group(server: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM to `aim up` and its uvicorn; SIGKILL to what is left after `grace_s`."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        server.poll()  # reap `aim up`, so that only live processes keep the group
        try:
            os.killpg(server.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(server.pid, signal.SIGKILL)
