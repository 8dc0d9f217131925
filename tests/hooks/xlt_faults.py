"""Test-only fault injection, driven by the XLT_FAULT environment variable.

`XLT_FAULT=KIND:JOB[:STEP][,...]` makes job number JOB (`*` for any, e.g. a single run) misbehave:
- `raise`: raise an error as the job starts (its run has started);
- `die`: the job's process kills itself with SIGKILL, as the out-of-memory killer would;
- `hold`: the job waits as it starts until the sweep, its launcher having given up, has read it as
  still running (a slow job, with no clock to tune: a file in XLT_FAULT_DIR says when);
- `sigterm`: at training step STEP the job sends itself SIGTERM;
- `sigterm-sweep`: at training step STEP the job sends SIGTERM to the sweep's process;
- `sigkill-sweep`: at training step STEP the job kills the sweep's process with SIGKILL;
- `die-at`: at training step STEP the job's process kills itself with SIGKILL;
- `die-testing`: the job's process kills itself with SIGKILL as testing starts (it has trained);
- `nan-lr`: from training step STEP the learning rate is NaN (what a bad schedule does to a run);
- `preempt`: at training step STEP the job sends itself SIGUSR2, submitit's preemption signal;
- `sync-die`: `xlt sync` kills itself with SIGKILL after writing STEP points;
- `sigterm-in`: the job sends itself SIGTERM as it enters phase STEP: `features` (encoding them),
  `validation` (an evaluation during training), `testing`, `saving` (the selected weights),
  `logging` (the predictions artifact);
- `sigkill-sweep-in`: the job kills the sweep's process with SIGKILL as it enters phase STEP.

xlt holds no hook for these: `tests/hooks/sitecustomize.py` (on PYTHONPATH only where a test asks,
see conftest.run_xlt) wraps xlt's own functions as their modules are imported, in every process
of the command, whatever the launcher.
"""
from __future__ import annotations

import functools
import os
import signal
import time
from typing import Optional


def _fault(job_num: Optional[int]):
    for spec in filter(None, os.environ.get("XLT_FAULT", "").split(",")):
        kind, job, *step = spec.split(":")
        if job in ("*", str(job_num)):
            return kind, (int(step[0]) if step[0].isdigit() else step[0]) if step else None
    return None


_entered = set()
SIGNALS_IN_PHASE = {"sigterm-in": (signal.SIGTERM, False), "sigkill-sweep-in": (signal.SIGKILL, True)}


def in_phase(phase: str) -> None:
    """The signal of a `sigterm-in`/`sigkill-sweep-in` fault, the first time the job enters `phase`."""
    fault = _fault(_job_num())
    if fault and fault[0] in SIGNALS_IN_PHASE and fault[1] == phase and phase not in _entered:
        _entered.add(phase)
        sig, to_sweep = SIGNALS_IN_PHASE[fault[0]]
        os.kill(os.getppid() if to_sweep else os.getpid(), sig)


def _job_num() -> Optional[int]:
    from hydra.core.hydra_config import HydraConfig

    try:
        return HydraConfig.get().job.get("num")
    except ValueError:  # Hydra is not running
        return None


def at_job_start(job_num: Optional[int]) -> None:
    fault = _fault(job_num)
    if fault and fault[0] == "raise":
        raise RuntimeError(f"injected failure in job {job_num}")
    if fault and fault[0] == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault and fault[0] == "hold":
        _wait_for(_flag(), timeout_s=600)  # a test's own limit


def _flag():
    from pathlib import Path

    return Path(os.environ["XLT_FAULT_DIR"]) / "the sweep read the jobs it waits for"


def _wait_for(path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)


SIGNALS_AT_STEP = {"sigterm": (signal.SIGTERM, False), "sigterm-sweep": (signal.SIGTERM, True),
                   "sigkill-sweep": (signal.SIGKILL, True), "die-at": (signal.SIGKILL, False)}


def at_step(job_num: Optional[int]):
    """A Trainer callback that sends SIGTERM (or, for `preempt`, SIGUSR2) at the chosen step."""
    from transformers import TrainerCallback

    fault = _fault(job_num)

    class AtStep(TrainerCallback):
        def on_prediction_step(self, args, state, control, **kwargs):
            if state.global_step > 0:  # the first evaluation after a step is one during training
                in_phase("validation")

        def on_step_end(self, args, state, control, **kwargs):
            if fault and fault[0] == "preempt" and fault[1] == state.global_step:
                os.kill(os.getpid(), signal.SIGUSR2)
            elif fault and fault[0] == "nan-lr" and fault[1] == state.global_step:
                kwargs["lr_scheduler"].base_lrs = [float("nan")] * len(kwargs["lr_scheduler"].base_lrs)
            elif fault and fault[1] == state.global_step and fault[0] in SIGNALS_AT_STEP:
                sig, to_sweep = SIGNALS_AT_STEP[fault[0]]
                os.kill(os.getppid() if to_sweep else os.getpid(), sig)

    return AtStep()


# -- the wrappers, applied as xlt's modules are imported -----------------------------------

def _patch_job(module) -> None:
    """The job's first step inside its run starts with `at_job_start`; its testing, with `die-testing`."""
    build_model, test = module.build_model, module.test

    @functools.wraps(build_model)
    def faulty_build_model(job):
        at_job_start(_job_num())
        return build_model(job)

    @functools.wraps(test)
    def faulty_test(*args, **kwargs):
        fault = _fault(_job_num())
        if fault and fault[0] == "die-testing":
            os.kill(os.getpid(), signal.SIGKILL)
        return test(*args, **kwargs)

    module.build_model, module.test = faulty_build_model, faulty_test
    module.save_predictions = _entering("testing", module.save_predictions)  # the test metrics partly logged
    module.save_selected = _entering("saving", module.save_selected)


def _entering(phase: str, function):
    """`function`, which first sends the phase's signal (`in_phase`)."""
    @functools.wraps(function)
    def entering(*args, **kwargs):
        in_phase(phase)
        return function(*args, **kwargs)

    return entering


def _patch_features(module) -> None:
    module._run_encoder = _entering("features", module._run_encoder)


def _patch_mlflow(module) -> None:
    """`logging`: as the predictions artifact is logged."""
    log_artifact = module.log_artifact

    @functools.wraps(log_artifact)
    def faulty_log_artifact(local_path, artifact_path=None, *args, **kwargs):
        if artifact_path == "predictions":
            in_phase("logging")
        return log_artifact(local_path, artifact_path, *args, **kwargs)

    module.log_artifact = faulty_log_artifact


def _patch_trainer(module) -> None:
    """Every Trainer gets the `at_step` callback."""
    build_trainer = module.build_trainer

    @functools.wraps(build_trainer)
    def faulty_build_trainer(*args, **kwargs):
        trainer = build_trainer(*args, **kwargs)
        trainer.add_callback(at_step(_job_num()))
        return trainer

    module.build_trainer = faulty_build_trainer


def _patch_aim_writer(module) -> None:
    """`sync-die`: SIGKILL once the sync has written STEP points."""
    write_metric, written = module.AimWriter.write_metric, [0]

    @functools.wraps(write_metric)
    def faulty_write_metric(self, *args, **kwargs):
        count = write_metric(self, *args, **kwargs)
        written[0] += count
        fault = _fault(None)
        if fault and fault[0] == "sync-die" and written[0] >= fault[1]:
            os.kill(os.getpid(), signal.SIGKILL)
        return count

    module.AimWriter.write_metric = faulty_write_metric


def _patch_heartbeat(module) -> None:
    """`hold`: the flag goes up once the sweep has read its lost jobs' runs (a held job among them)."""
    wait_for_live_jobs = module.wait_for_live_jobs

    @functools.wraps(wait_for_live_jobs)
    def flagging_wait(nums, job_runs, *args, **kwargs):
        def read_then_flag():
            runs = job_runs()
            if os.environ.get("XLT_FAULT_DIR"):
                _flag().touch()
            return runs

        return wait_for_live_jobs(nums, read_then_flag, *args, **kwargs)

    module.wait_for_live_jobs = flagging_wait


PATCHES = {"xlt.train.job": _patch_job, "xlt.tracking.heartbeat": _patch_heartbeat, "xlt.train.trainer": _patch_trainer,
           "xlt.tracking.aim_writer": _patch_aim_writer, "xlt.model.features": _patch_features, "mlflow": _patch_mlflow}
