"""xlt's Hydra launcher: each job runs in a process of its own, at most `n_jobs` at a time.

Hydra's joblib launcher runs jobs in a loky pool: one dead worker (an out-of-memory kill)
aborts every job in flight, and with n_jobs=1 jobs run inside the sweep's own process, so
the same kill ends the whole sweep. Here a job's death ends that job only: its MLflow run is
marked FAILED and the sweep goes on. Each job also gets a GPU of its own while there are
enough, and Ctrl-C or SIGTERM stops running jobs cleanly (each saves a checkpoint).
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher as HydraLauncher
from omegaconf import open_dict

log = logging.getLogger(__name__)

FINISHED, FAILED, KILLED, NOT_STARTED, SKIPPED = "FINISHED", "FAILED", "KILLED", "NOT STARTED", "SKIPPED"


@dataclass
class LauncherConf:
    _target_: str = "hydra_plugins.xlt_sweep.XltLauncher"
    n_jobs: int = 1  # jobs at a time; with N GPUs, n_jobs=N gives every job a GPU of its own
    stop_timeout: float = 300.0  # seconds a stopped job gets to reach a checkpoint


@dataclass
class Outcome:
    """What became of one job of a sweep."""
    num: int
    overrides: List[str]
    status: str = NOT_STARTED
    seconds: float = 0.0
    run_id: Optional[str] = None
    target_accuracy: Optional[float] = None
    error: str = ""


def visible_gpus() -> List[str]:
    """The GPUs jobs may use, as CUDA_VISIBLE_DEVICES entries."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def _child(payload: bytes, num: int, overrides: List[str], gpu: Optional[str], conn) -> None:
    """One job, in its own process (the body of joblib's `execute_job`, plus reporting)."""
    os.setpgrp()  # a terminal's Ctrl-C reaches the sweep, which stops its jobs once each
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before anything imports torch
    import cloudpickle
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import run_job

    hydra_context, config, task_function, singleton_state = cloudpickle.loads(payload)
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{num}"
        sweep_config.hydra.job.num = num
    HydraConfig.instance().set_config(sweep_config)
    job_dir = Path(str(sweep_config.hydra.sweep.dir), str(sweep_config.hydra.sweep.subdir)).resolve()
    from xlt.config import validate

    cfg = validate(sweep_config)
    conn.send(("started", {"job_dir": job_dir, "uri": cfg.tracking_uri, "experiment": cfg.tracking.experiment}))
    try:
        ret = run_job(hydra_context=hydra_context, config=sweep_config, task_function=task_function,
                      job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
        if ret.status == JobStatus.COMPLETED:
            conn.send(("done", ret.return_value))
        else:
            error = ret._return_value
            text = "".join(traceback.format_exception(error))
            print(text, file=sys.stderr)
            conn.send(("failed", f"{type(error).__name__}: {error}"))
    except KeyboardInterrupt as e:
        conn.send(("killed", str(e) or "interrupted"))
    except SystemExit as e:  # run.py exits 2 on a configuration error found at run time
        conn.send(("failed", str(e.__context__ or f"exited with code {e.code}")))
    if "mlflow" in sys.modules:  # the run this job logged to, for the summary
        run = sys.modules["mlflow"].last_active_run()
        conn.send(("run", run.info.run_id if run else None))


@dataclass
class _Running:
    outcome: Outcome
    process: mp.Process
    conn: object
    gpu: Optional[str]
    started: float = field(default_factory=time.perf_counter)
    info: Dict = field(default_factory=dict)


def _death(exitcode: Optional[int]) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = ", e.g. by the out-of-memory killer" if name == "SIGKILL" else ""
        return f"job process was killed by {name}{hint}"
    return f"job process exited with code {exitcode} without a result"


class Launcher(HydraLauncher):
    def __init__(self, n_jobs: int = 1, stop_timeout: float = 300.0):
        self.n_jobs, self.stop_timeout = max(1, int(n_jobs)), stop_timeout
        self.config = self.task_function = self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.task_function, self.hydra_context = config, task_function, hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Hydra's interface; xlt's sweeper calls `run_jobs` for the richer outcome."""
        outcomes = self.run_jobs([(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)])
        returns = []
        for o in outcomes:
            ret = JobReturn(overrides=o.overrides, status=JobStatus.COMPLETED if o.status == FINISHED
                            else JobStatus.FAILED)
            ret.return_value = o if o.status == FINISHED else RuntimeError(f"{o.status}: {o.error}")
            returns.append(ret)
        return returns

    def _gpus(self) -> List[Optional[str]]:
        gpus = visible_gpus()
        if not gpus:
            log.info("No GPU visible: %s on the CPU.", "jobs run" if self.n_jobs == 1
                     else f"{self.n_jobs} jobs at a time share")
            return [None] * self.n_jobs
        if self.n_jobs > len(gpus):
            log.warning("n_jobs=%d > %d GPUs: some jobs share a GPU.", self.n_jobs, len(gpus))
        return [gpus[i % len(gpus)] for i in range(self.n_jobs)]

    def run_jobs(self, jobs: List[Tuple[int, List[str]]]) -> List[Outcome]:
        import cloudpickle

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info("Launching %d jobs, %d at a time, into %s", len(jobs), self.n_jobs, self.config.hydra.sweep.dir)
        for num, overrides in jobs:
            log.info("\t#%d : %s", num, " ".join(filter_overrides(overrides)))
        payload = cloudpickle.dumps((self.hydra_context, self.config, self.task_function, Singleton.get_state()))
        ctx = mp.get_context("spawn")  # a fresh interpreter per job: no inherited CUDA or threads
        free_gpus = deque(self._gpus())
        pending = deque(Outcome(num, overrides) for num, overrides in jobs)
        outcomes = list(pending)
        running: Dict[int, _Running] = {}
        stop_at: Optional[float] = None  # when stopped jobs will be killed
        killed = False

        def start(outcome: Outcome) -> None:
            gpu = free_gpus.popleft()
            reader, writer = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_child, args=(payload, outcome.num, outcome.overrides, gpu, writer),
                                  name=f"xlt-job-{outcome.num}")
            process.start()
            writer.close()
            running[process.sentinel] = _Running(outcome, process, reader, gpu)

        def finish(job: _Running) -> None:
            job.process.join()
            free_gpus.append(job.gpu)
            o, result = job.outcome, None
            o.seconds = time.perf_counter() - job.started
            while job.conn.poll():
                try:
                    kind, value = job.conn.recv()
                except EOFError:
                    break
                if kind == "started":
                    job.info = value
                elif kind == "run":
                    o.run_id = o.run_id or value
                else:
                    result = (kind, value)
            if result is None:
                o.status = KILLED if stop_at else FAILED
                o.error = "stopped by the sweep" if stop_at else _death(job.process.exitcode)
                if job.info:
                    from xlt.runs import fail_orphans

                    orphans = fail_orphans(job.info["uri"], job.info["experiment"], job.info["job_dir"],
                                           o.error, status=o.status)
                    o.run_id = orphans[0] if orphans else None
            elif result[0] == "done":
                o.status = FINISHED
                if isinstance(result[1], dict):
                    o.target_accuracy = result[1].get("target_accuracy")
            else:
                o.status, o.error = (KILLED if result[0] == "killed" else FAILED), result[1]
            level = logging.INFO if o.status == FINISHED else logging.ERROR
            log.log(level, "#%d %s after %.1f s%s", o.num, o.status, o.seconds, f": {o.error}" if o.error else "")

        def stop(sig: int) -> None:
            for job in running.values():
                if job.process.is_alive():
                    os.kill(job.process.pid, sig)

        def on_sigterm(signum, frame):
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, on_sigterm)
        try:
            while pending or running:
                try:
                    while pending and stop_at is None and len(running) < self.n_jobs:
                        start(pending.popleft())
                    timeout = None if stop_at is None or killed else max(0.0, stop_at - time.monotonic())
                    ready = wait(list(running), timeout=timeout)
                    if not ready:
                        log.error("Jobs still running %.0f s after the stop: killing them", self.stop_timeout)
                        stop(signal.SIGKILL)
                        killed = True
                    for sentinel in ready:
                        finish(running.pop(sentinel))
                except KeyboardInterrupt:
                    if stop_at is None:
                        log.warning("Stopping: %d running jobs save a checkpoint, %d not started "
                                    "(Ctrl-C again to kill them)", len(running), len(pending))
                        pending.clear()
                        stop_at = time.monotonic() + self.stop_timeout
                        stop(signal.SIGTERM)
                    else:
                        stop(signal.SIGKILL)
                        killed = True
        finally:
            signal.signal(signal.SIGTERM, previous)
        return outcomes
