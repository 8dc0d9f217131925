"""xlt's Hydra sweeper: the basic grid sweep, made safe to leave running overnight.

Differences from Hydra's BasicSweeper, whose grid expansion, batches and config it keeps:
- a job's protocol may make several of it (translate-train: one per target language,
  xlt.protocols), and every job's config is validated before the first job starts;
- jobs whose run already FINISHED with the same config and local files are skipped
  (`sweep.skip_finished`); one that another live run holds is skipped by the job itself
  (xlt.tracking.lease), and one whose run's process died is taken over;
- the sweep's parent run beats while the sweep's process lives (xlt.tracking.sweep_run): a job
  whose sweep died stops with a checkpoint, which the sweep's rerun resumes;
- a failed job does not stop the sweep or skip its end (xlt.sweep.end): every job gets a row in
  the summary table (`<sweep dir>/summary.md`), the report is written (`<sweep dir>/report/`),
  the Aim sync runs, Hydra's `on_multirun_end` callbacks run, and the process exits 1 if any job
  failed (130 if the sweep was stopped).

`sweep` returns Hydra's JobReturns, a list per batch, as Hydra's sweepers do; `outcomes` holds
xlt's view of every job, the skipped ones included.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, filter_overrides
from hydra.plugins.sweeper import Sweeper as HydraSweeper
from omegaconf import OmegaConf

from xlt.config import XltConfig, validate
from xlt.core.console import quiet_third_party
from xlt.core.errors import first_line
from xlt.core.metrics import target_score
from xlt.protocols import check
from xlt.sweep import grid
from xlt.sweep.end import finish_sweep
from xlt.sweep.outcome import FAILED, FINISHED, KILLED, NOT_STARTED, SKIPPED, Outcome
from xlt.sweep.settle import job_runs, settle

log = logging.getLogger(__name__)

Jobs = List[Tuple[int, List[str]]]  # (job number, overrides)


class Sweeper(HydraSweeper):
    # Not a BasicSweeper subclass: Hydra re-executes its module when scanning for plugins,
    # which breaks `super()` in subclasses defined elsewhere. Its grid expansion is reused.
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, str]] = None):
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.config = self.launcher = self.hydra_context = None
        self.outcomes: List[Outcome] = []
        self.sweep_run = None  # xlt.tracking.sweep_run.SweepRun, once the first job is launched

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    @property
    def sweep_dir(self) -> Path:
        return Path(str(self.config.hydra.sweep.dir))

    def sweep(self, arguments: List[str]) -> List[Sequence[JobReturn]]:
        self._check_app()
        jobs = grid.protocol_jobs(grid.grid_jobs(self._parse(arguments)), self._typed)
        batches = grid.in_batches(jobs, self.max_batch_size)
        numbered, first = [], 0
        for batch in batches:
            numbered.append(list(enumerate(batch, start=first)))
            first += len(batch)
        self._start()
        configs = {num: self._config(job) for batch in numbered for num, job in batch}
        returns = []
        for jobs in numbered:
            outcomes = self._run(jobs, configs)
            returns.append([o.job_return for o in outcomes if o.job_return is not None])
            if any(o.status in (KILLED, NOT_STARTED) for o in outcomes):  # the sweep was stopped
                break
        self._finish(configs)
        return [batch for batch in returns if batch]

    def _check_app(self) -> None:
        """xlt's sweeper sweeps xlt's jobs (it validates, skips and reports them as xlt's): another
        app's config is one line, naming the sweeper that sweeps any app."""
        from hydra.errors import ConfigCompositionException  # Hydra prints these as one line

        missing = [key for key in ("task", "technique", "protocol", "train") if key not in self.config]
        if missing:
            raise ConfigCompositionException(
                f"hydra/sweeper=xlt sweeps xlt's jobs (python run.py -m ...), and this app's config has no "
                f"{', '.join(missing)}; use hydra/sweeper=basic for another app (hydra/launcher=xlt runs any "
                "app's jobs)")

    def _parse(self, arguments: List[str]) -> list:
        """The sweeper's params, then the command line (which wins), as Hydra overrides."""
        quiet_third_party()  # the end-of-sweep sync's libraries
        return grid.parse(grid.with_params(self.params, arguments), self.hydra_context.config_loader)

    def _start(self) -> None:
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")

    def _typed(self, overrides: List[str]) -> XltConfig:
        return validate(self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides)))

    def _config(self, overrides: List[str]) -> XltConfig:
        return check(self._typed(overrides))

    def _run(self, jobs: Jobs, configs: Dict[int, XltConfig]) -> List[Outcome]:
        """Run these jobs, skipping those that already finished; their outcomes, in job order."""
        outcomes = [Outcome(num, overrides) for num, overrides in jobs]
        self._skip_finished(outcomes, configs)
        todo = [o for o in outcomes if o.status != SKIPPED]
        if todo:
            self._beat(configs[todo[0].num])
            done = {o.num: o for o in self._launch([(o.num, o.overrides) for o in todo], configs)}
            outcomes = [done.get(o.num, o) for o in outcomes]
        self.outcomes += outcomes
        return outcomes

    def _finish(self, configs: Dict[int, XltConfig]) -> None:
        """The end of the sweep; a sweep that failed or was stopped exits with its status once
        Hydra's own end-of-sweep callbacks have run (Hydra runs them itself after a clean sweep)."""
        if self.sweep_run is not None:  # the report (finish_sweep) ends it with the sweep's status
            self.sweep_run.stop_beating()
        status = finish_sweep(self.outcomes, configs.values(), self.sweep_dir)
        if self.sweep_run is not None:  # no report (nothing ran, or it failed): ended here
            self.sweep_run.end({0: "FINISHED", 1: "FAILED"}.get(status, "KILLED"))
        self._end_dead_runs(configs)
        if status:
            self.hydra_context.callbacks.on_multirun_end(config=self.config,
                                                         config_name=self.config.hydra.job.config_name)
            raise SystemExit(status)

    def _beat(self, cfg: XltConfig) -> None:
        """Start the sweep's parent run and its heartbeat, once."""
        if self.sweep_run is None:
            from xlt.tracking.sweep_run import SweepRun

            self.sweep_run = SweepRun(cfg, self.sweep_dir.name)
            self.sweep_run.start()

    @staticmethod
    def _end_dead_runs(configs: Dict[int, XltConfig]) -> None:
        """Runs whose process died, ended FAILED: a sweep killed a moment before this one started
        had not been silent long enough to tell at its start (its parent run, say)."""
        from xlt.tracking.store import end_dead_runs

        for uri, experiment in dict.fromkeys((c.tracking_uri, c.tracking.experiment) for c in configs.values()):
            try:
                end_dead_runs(uri, experiment)
            except Exception as e:  # noqa: BLE001 - the sweep's results stand; readers show such runs as dead
                log.warning("could not end dead runs in %s (%s)", uri, first_line(e))

    def _skip_finished(self, outcomes: List[Outcome], configs: Dict[int, XltConfig]) -> None:
        from xlt.data.identity import job_hash
        from xlt.tracking.store import end_dead_runs, finished_runs

        by_store = defaultdict(list)
        for o in outcomes:
            cfg = configs[o.num]
            by_store[(cfg.tracking_uri, cfg.tracking.experiment)].append((o, job_hash(cfg)))
        for (uri, experiment), pairs in by_store.items():
            end_dead_runs(uri, experiment)  # long dead: no job needs to watch them to tell
            pairs = [(o, h) for o, h in pairs if configs[o.num].sweep.skip_finished]
            finished = finished_runs(uri, experiment, [h for _, h in pairs])
            for o, h in pairs:
                if h in finished:
                    run = finished[h]
                    o.status, o.run_id = SKIPPED, run.info.run_id
                    o.target_score = target_score(run)
                    log.info("Skipping #%d (%s): run %s already finished with this config "
                             "(sweep.skip_finished=false reruns it)",
                             o.num, " ".join(filter_overrides(o.overrides)), o.run_id)

    def _launch(self, jobs: Jobs, configs: Dict[int, XltConfig]) -> List[Outcome]:
        sweep_id = self.sweep_dir.name
        if hasattr(self.launcher, "run_jobs"):  # xlt's launcher: each job settled as it ends
            return self.launcher.run_jobs(jobs, on_end=lambda o: settle([o], configs, sweep_id))
        # Another launcher (submitit, Ray, joblib): one call per run of consecutive job numbers
        # keeps each job's number (and directory) across reruns.
        outcomes, lost = [], {}  # lost: job number -> what the launcher said
        for first, batch in _consecutive(jobs):
            returns = self._launch_batch(first, batch, lost)
            outcomes += [_outcome_of(first + i, batch[i], ret) for i, ret in enumerate(returns)]
        if lost:  # the batch's other jobs may still be running, or queued behind those that are
            from xlt.tracking.heartbeat import wait_for_live_jobs

            wait_for_live_jobs(lost, lambda: job_runs(configs, sweep_id))
        settle(outcomes, configs, sweep_id, lost)
        return outcomes

    def _launch_batch(self, first: int, batch: List[List[str]], lost: Dict[int, str]) -> list:
        try:
            return self.launcher.launch(batch, initial_job_idx=first)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - a job process died (submitit, Ray, joblib): the launcher drops every result
            said = f"{type(e).__name__}: {first_line(e)[:300]}"
            log.error("the launcher lost jobs #%d-#%d (%s); their runs tell what became of them",
                      first, first + len(batch) - 1, said)
            lost.update(dict.fromkeys(range(first, first + len(batch)), said))
            return [None] * len(batch)


def _consecutive(jobs: Jobs) -> List[Tuple[int, List[List[str]]]]:
    """(first job number, overrides of each job) of each run of consecutive job numbers."""
    groups: List[Tuple[int, List[List[str]]]] = []
    for num, overrides in jobs:
        if groups and groups[-1][0] + len(groups[-1][1]) == num:
            groups[-1][1].append(overrides)
        else:
            groups.append((num, [overrides]))
    return groups


def _outcome_of(num: int, overrides: List[str], ret: Optional[JobReturn]) -> Outcome:
    """A plugin launcher's JobReturn as an outcome (NOT STARTED where it gave none: settled later)."""
    o = Outcome(num, list(overrides), job_return=ret)
    if ret is not None and ret.status.name == "COMPLETED":
        o.status = FINISHED
        o.take_result(ret.return_value)
    elif ret is not None:
        o.status, o.error = FAILED, str(ret._return_value)
    return o
