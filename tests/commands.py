"""xlt's commands run as a user runs them: a real process, for the tests where the process itself is the
point (its exit status, console, signals, launchers, environment). In-process jobs: tests/jobs.py."""
import os
import sys
from pathlib import Path

from conftest import HOOKS, REPO


def run_xlt(*args: str, cwd: Path = REPO, timeout: int = 600, fault: str = "", command=None, env=None):
    """`python run.py ARGS` in a subprocess, as a user would run it.

    `fault` sets XLT_FAULT (tests/hooks/xlt_faults.py), and puts tests/hooks on PYTHONPATH so that
    every process of the command loads the fault hooks; `command` replaces `python run.py`.
    """
    import subprocess

    command = command or [sys.executable, str(REPO / "run.py")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "XLT_FAULT": fault, **(env or {})}
    if fault:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HOOKS), env.get("PYTHONPATH")]))
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def xlt_cli(*args: str, **kwargs):
    """`xlt ARGS` (report, sync, reproduce, aim-up) in a subprocess; keyword arguments as `run_xlt`'s."""
    return run_xlt(*args, command=[sys.executable, "-m", "xlt.cli"], **kwargs)
