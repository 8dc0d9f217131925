"""Test-only fault injection, driven by the XLT_FAULT environment variable.

`XLT_FAULT=KIND:JOB[:STEP][,...]` makes job number JOB (`*` for any, e.g. a single run) misbehave:
- `raise`: raise an error as the job starts;
- `die`: the job's process kills itself with SIGKILL, as the out-of-memory killer would;
- `sleep`: the job waits STEP seconds as it starts, to outlast the others (a slow job);
- `sigterm`: at training step STEP the job sends itself SIGTERM;
- `sigterm-sweep`: at training step STEP the job sends SIGTERM to the sweep's process;
- `preempt`: at training step STEP the job sends itself SIGUSR2, submitit's preemption signal;
- `sync-die`: `xlt sync` kills itself with SIGKILL after writing STEP points.
Unset in normal use; the fault-injection tests set it.
"""
from __future__ import annotations

import os
import signal
import time
from typing import Optional


def _fault(job_num: Optional[int]):
    for spec in filter(None, os.environ.get("XLT_FAULT", "").split(",")):
        kind, job, *step = spec.split(":")
        if job in ("*", str(job_num)):
            return kind, int(step[0]) if step else None
    return None


def at_job_start(job_num: Optional[int]) -> None:
    fault = _fault(job_num)
    if fault and fault[0] == "raise":
        raise RuntimeError(f"injected failure in job {job_num}")
    if fault and fault[0] == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault and fault[0] == "sleep":
        time.sleep(fault[1])


def at_step(job_num: Optional[int]):
    """A Trainer callback that sends SIGTERM (or, for `preempt`, SIGUSR2) at the chosen step."""
    from transformers import TrainerCallback

    fault = _fault(job_num)

    class AtStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if fault and fault[0] == "preempt" and fault[1] == state.global_step:
                os.kill(os.getpid(), signal.SIGUSR2)
            elif fault and fault[0].startswith("sigterm") and fault[1] == state.global_step:
                os.kill(os.getppid() if fault[0] == "sigterm-sweep" else os.getpid(), signal.SIGTERM)

    return AtStep()


def sync_points_written(count: int) -> None:
    fault = _fault(None)
    if fault and fault[0] == "sync-die" and count >= fault[1]:
        os.kill(os.getpid(), signal.SIGKILL)
