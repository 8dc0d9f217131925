"""xlt's Hydra launcher: each job runs in a process of its own, at most `n_jobs` at a time.

Hydra's joblib launcher runs jobs in a loky pool: one dead worker (an out-of-memory kill)
aborts every job in flight, and with n_jobs=1 jobs run inside the sweep's own process, so
the same kill ends the whole sweep. Here a job's death ends that job only, and the sweep goes
on. Each job also gets a GPU of its own while there are enough, and Ctrl-C or SIGTERM stops
running jobs cleanly (each saves a checkpoint).

It knows nothing of xlt's jobs: any Hydra app can use it, and `launch` returns Hydra's
`JobReturn`s as Hydra's own launchers do (config, Hydra config, working directory, the task's
return value or its exception). `run_jobs` gives xlt's sweeper each job's `Outcome` beside it.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import pickle
import signal
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher as HydraLauncher
from omegaconf import open_dict

from xlt.core.devices import visible_gpus
from xlt.sweep.outcome import FAILED, FINISHED, KILLED, Outcome

log = logging.getLogger(__name__)


def _portable(ret: JobReturn) -> JobReturn:
    """The JobReturn as it can cross to the sweep's process, by the pipe's own cloudpickle: the job's
    exception as it was, its class defined in the app's own script too (cloudpickle carries such a
    class by value and gives the sweep's process back its own class object); one that does not
    unpickle (e.g. one whose constructor takes other arguments) travels as a RuntimeError."""
    import cloudpickle

    if ret.status == JobStatus.FAILED:
        try:
            pickle.loads(cloudpickle.dumps(ret._return_value))
        except Exception:  # noqa: BLE001 - any exception may fail to pickle, in its own way
            error = ret._return_value
            ret._return_value = RuntimeError(f"{type(error).__name__}: {error}")
    return ret


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
    try:
        ret = run_job(hydra_context=hydra_context, config=sweep_config, task_function=task_function,
                      job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
        error = ""
        if ret.status == JobStatus.FAILED:  # the job's log and stderr get its traceback
            error = f"{type(ret._return_value).__name__}: {ret._return_value}"
            print("".join(traceback.format_exception(ret._return_value)), file=sys.stderr)
        _send(conn, ("return", cloudpickle.dumps(_portable(ret)), error))
    except KeyboardInterrupt as e:
        _send(conn, ("killed", str(e) or "interrupted"))
    except SystemExit as e:  # an app that exits, as run.py does on a configuration error found at run time
        _send(conn, ("failed", str(e.__context__ or f"exited with code {e.code}")))


def _send(conn, message: tuple) -> None:
    try:
        conn.send(message)
    except OSError:  # the sweep died: the job's run has told the store what became of it
        pass


def _received(conn) -> Optional[tuple]:
    """The job's one message, or None if its process ended without sending it."""
    try:
        return conn.recv() if conn.poll() else None
    except EOFError:
        return None


def _death(exitcode: Optional[int]) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = ", e.g. by the out-of-memory killer" if name == "SIGKILL" else ""
        return f"job process was killed by {name}{hint}"
    return f"job process exited with code {exitcode} without a result"


def _failed_return(o: Outcome) -> JobReturn:
    """Hydra's JobReturn of a job that gave none (died, stopped or never started)."""
    ret = JobReturn(overrides=o.overrides, status=JobStatus.FAILED)
    ret.return_value = RuntimeError(f"{o.status}: {o.error}" if o.error else o.status)
    return ret


@dataclass
class _Running:
    outcome: Outcome
    process: mp.Process
    conn: object
    gpu: Optional[str]
    started: float = field(default_factory=time.perf_counter)


class _Pool:
    """The job processes of one `run_jobs` call: started while there is room, each one's end read
    from its pipe, all of them stopped on Ctrl-C or SIGTERM."""

    def __init__(self, payload: bytes, gpus: List[Optional[str]], stop_timeout: float,
                 on_end: Callable[[Outcome], None]):
        self.payload, self.stop_timeout, self.on_end = payload, stop_timeout, on_end
        self.ctx = mp.get_context("spawn")  # a fresh interpreter per job: no inherited CUDA or threads
        self.free_gpus = deque(gpus)
        self.running: Dict[int, _Running] = {}
        self.stop_at: Optional[float] = None  # when stopped jobs will be killed
        self.killed = False

    def start(self, outcome: Outcome) -> None:
        gpu = self.free_gpus.popleft()
        reader, writer = self.ctx.Pipe(duplex=False)
        process = self.ctx.Process(target=_child, args=(self.payload, outcome.num, outcome.overrides, gpu, writer),
                                   name=f"xlt-job-{outcome.num}")
        process.start()
        writer.close()
        self.running[process.sentinel] = _Running(outcome, process, reader, gpu)

    def finish(self, job: _Running) -> None:
        job.process.join()
        self.free_gpus.append(job.gpu)
        o = job.outcome
        o.seconds = time.perf_counter() - job.started
        result = _received(job.conn)
        if result is None:
            o.status = KILLED if self.stop_at else FAILED
            o.error = "stopped by the sweep" if self.stop_at else _death(job.process.exitcode)
        elif result[0] == "return":
            import cloudpickle

            o.job_return = cloudpickle.loads(result[1])
            if o.job_return.status == JobStatus.COMPLETED:
                o.status = FINISHED
                o.take_result(o.job_return.return_value)
            else:
                o.status, o.error = FAILED, result[2]
        else:
            o.status, o.error = (KILLED if result[0] == "killed" else FAILED), result[1]
        level = logging.INFO if o.status == FINISHED else logging.ERROR
        log.log(level, "#%d %s after %.1f s%s", o.num, o.status, o.seconds, f": {o.error}" if o.error else "")
        self.on_end(o)

    def signal_all(self, sig: int) -> None:
        for job in self.running.values():
            if job.process.is_alive():
                os.kill(job.process.pid, sig)

    def stop(self, pending: deque) -> None:
        """The first Ctrl-C or SIGTERM: running jobs save a checkpoint, pending ones never start;
        the next one kills them."""
        if self.stop_at is not None:
            self.signal_all(signal.SIGKILL)
            self.killed = True
            return
        log.warning("Stopping: %d running jobs save a checkpoint, %d not started "
                    "(Ctrl-C again to kill them)", len(self.running), len(pending))
        pending.clear()
        self.stop_at = time.monotonic() + self.stop_timeout
        self.signal_all(signal.SIGTERM)

    def wait_for_one(self) -> None:
        """Until some job ends (or the stop's grace period does: then the rest are killed)."""
        timeout = None if self.stop_at is None or self.killed else max(0.0, self.stop_at - time.monotonic())
        ready = wait(list(self.running), timeout=timeout)
        if not ready:
            log.error("Jobs still running %.0f s after the stop: killing them", self.stop_timeout)
            self.signal_all(signal.SIGKILL)
            self.killed = True
        for sentinel in ready:
            self.finish(self.running.pop(sentinel))

    def run(self, pending: deque, n_jobs: int) -> None:
        while pending or self.running:
            try:
                while pending and self.stop_at is None and len(self.running) < n_jobs:
                    self.start(pending.popleft())
                self.wait_for_one()
            except KeyboardInterrupt:
                self.stop(pending)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


class Launcher(HydraLauncher):
    def __init__(self, n_jobs: int = 1, stop_timeout: float = 300.0):
        self.n_jobs, self.stop_timeout = max(1, int(n_jobs)), stop_timeout
        self.config = self.task_function = self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.task_function, self.hydra_context = config, task_function, hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Hydra's interface: a JobReturn per job, in order."""
        outcomes = self.run_jobs([(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)])
        return [o.job_return or _failed_return(o) for o in outcomes]

    def _gpus(self) -> List[Optional[str]]:
        gpus = visible_gpus()
        if not gpus:
            log.info("No GPU visible: %s on the CPU.", "jobs run" if self.n_jobs == 1
                     else f"{self.n_jobs} jobs at a time share")
            return [None] * self.n_jobs
        if self.n_jobs > len(gpus):
            log.warning("n_jobs=%d > %d GPUs: some jobs share a GPU.", self.n_jobs, len(gpus))
        return [gpus[i % len(gpus)] for i in range(self.n_jobs)]

    def run_jobs(self, jobs: List[Tuple[int, List[str]]],
                 on_end: Callable[[Outcome], None] = lambda outcome: None) -> List[Outcome]:
        """Run these jobs (number, overrides); `on_end` is called as each one ends."""
        import cloudpickle

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info("Launching %d jobs, %d at a time, into %s", len(jobs), self.n_jobs, self.config.hydra.sweep.dir)
        for num, overrides in jobs:
            log.info("\t#%d : %s", num, " ".join(filter_overrides(overrides)))
        payload = cloudpickle.dumps((self.hydra_context, self.config, self.task_function, Singleton.get_state()))
        outcomes = [Outcome(num, overrides) for num, overrides in jobs]
        pool = _Pool(payload, self._gpus(), self.stop_timeout, on_end)
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            pool.run(deque(outcomes), self.n_jobs)
        finally:
            signal.signal(signal.SIGTERM, previous)
        return outcomes
