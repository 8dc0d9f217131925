"""xlt's Hydra sweeper: the basic grid sweep, made safe to leave running overnight.

Differences from Hydra's BasicSweeper, whose grid expansion and config it keeps:
- jobs whose run already FINISHED with the same config are skipped (`sweep.skip_finished`);
- a failed job does not stop the sweep or skip its end: every job gets a row in the summary
  table (`<sweep dir>/summary.md`), the report is written (`<sweep dir>/report/`, xlt/report.py),
  the Aim sync runs, Hydra's `on_multirun_end` callbacks run, and the exit code is 1 if any
  job failed (130 if the sweep was stopped).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import filter_overrides
from hydra.plugins.sweeper import Sweeper as HydraSweeper
from omegaconf import OmegaConf

from xlt.config import XltConfig, config_hash, validate
from xlt.errors import first_line
from xlt.metrics import TARGET_MEAN, metric_name
from xlt.launcher import FAILED, FINISHED, KILLED, NOT_STARTED, SKIPPED, Outcome

log = logging.getLogger(__name__)
exit_code = 0  # of the last sweep: 1 if a job failed, 130 if the sweep was stopped
TARGET_ACCURACY = metric_name("test", "accuracy", TARGET_MEAN)


@dataclass
class SweeperConf:
    _target_: str = "hydra_plugins.xlt_sweep.XltSweeper"
    max_batch_size: Optional[int] = None  # accepted as in Hydra; hydra.launcher.n_jobs bounds concurrency
    params: Optional[Dict[str, str]] = None


class Sweeper(HydraSweeper):
    # Not a BasicSweeper subclass: Hydra re-executes its module when scanning for plugins,
    # which breaks `super()` in subclasses defined elsewhere. Its grid expansion is reused.
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, str]] = None):
        self.params = dict(params or {})
        self.config = self.launcher = self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> List[Outcome]:
        jobs = [list(job) for batch in BasicSweeper.split_arguments(self._parse(arguments), None) for job in batch]
        sweep_dir = self._start()
        configs = {num: self._config(job) for num, job in enumerate(jobs)}
        return self._finish(self._run(list(enumerate(jobs)), configs), configs, sweep_dir)

    def _parse(self, arguments: List[str]) -> list:
        """The sweeper's params, then the command line (which wins), as Hydra overrides."""
        from xlt.console import quiet_third_party

        quiet_third_party()  # the end-of-sweep sync's libraries
        params = [f"{key}={value}" for key, value in self.params.items()]
        return OverridesParser.create(config_loader=self.hydra_context.config_loader).parse_overrides(
            params + list(arguments))

    def _start(self) -> Path:
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        return sweep_dir

    def _config(self, overrides: List[str]) -> XltConfig:
        return validate(self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides)))

    def _run(self, jobs: List[Tuple[int, List[str]]], configs: Dict[int, XltConfig]) -> List[Outcome]:
        """Run these jobs (number, overrides), skipping those that already finished."""
        outcomes = [Outcome(num, overrides) for num, overrides in jobs]
        self._skip_finished(outcomes, configs)
        todo = [o for o in outcomes if o.status != SKIPPED]
        if todo:
            done = {o.num: o for o in self._launch([(o.num, o.overrides) for o in todo], configs)}
            outcomes = [done.get(o.num, o) for o in outcomes]
        return outcomes

    def _finish(self, outcomes: List[Outcome], configs: Dict[int, XltConfig], sweep_dir: Path) -> List[Outcome]:
        """The end of every sweep, whatever became of its jobs: summary, report, sync, exit code."""
        from xlt import summary
        from xlt.report import report_after_sweep
        from xlt.sync import sync_after

        path = summary.write(outcomes, sweep_dir)
        print(f"\n{summary.table(outcomes)}\n(written to {path})", flush=True)
        report_after_sweep(list(configs.values()), outcomes, sweep_dir)  # before the sync: Aim gets the parent run too
        sync_after(configs.values())
        global exit_code  # run.py exits with it once Hydra's own end-of-sweep callbacks ran
        statuses = {o.status for o in outcomes}
        exit_code = 130 if statuses & {KILLED, NOT_STARTED} else 1 if FAILED in statuses else 0
        return outcomes

    def _skip_finished(self, outcomes: List[Outcome], configs: Dict[int, XltConfig]) -> None:
        from xlt.runs import finished_runs

        by_store = defaultdict(list)
        for o in outcomes:
            cfg = configs[o.num]
            if cfg.sweep.skip_finished:
                by_store[(cfg.tracking_uri, cfg.tracking.experiment)].append((o, config_hash(cfg)))
        for (uri, experiment), pairs in by_store.items():
            finished = finished_runs(uri, experiment, [h for _, h in pairs])
            for o, h in pairs:
                if h in finished:
                    run = finished[h]
                    o.status, o.run_id = SKIPPED, run.info.run_id
                    o.target_accuracy = run.data.metrics.get(TARGET_ACCURACY)
                    log.info("Skipping #%d (%s): run %s already finished with this config "
                             "(sweep.skip_finished=false reruns it)",
                             o.num, " ".join(filter_overrides(o.overrides)), o.run_id)

    def _launch(self, jobs: List[Tuple[int, List[str]]], configs: Dict[int, XltConfig]) -> List[Outcome]:
        if hasattr(self.launcher, "run_jobs"):
            return self.launcher.run_jobs(jobs)
        # Another launcher (submitit, Ray, joblib): one call per run of consecutive job numbers
        # keeps each job's number (and directory) across reruns.
        outcomes, groups, lost = [], [], {}  # lost: job number -> what the launcher said
        for num, overrides in jobs:
            if groups and groups[-1][0] + len(groups[-1][1]) == num:
                groups[-1][1].append(overrides)
            else:
                groups.append((num, [overrides]))
        for first, batch in groups:
            try:
                returns = self.launcher.launch(batch, initial_job_idx=first)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # a job process died (submitit, Ray, joblib): the launcher drops every result
                said = f"{type(e).__name__}: {first_line(e)[:300]}"
                log.error("the launcher lost jobs #%d-#%d (%s); their runs tell what became of them",
                          first, first + len(batch) - 1, said)
                returns = [None] * len(batch)
                lost.update(dict.fromkeys(range(first, first + len(batch)), said))
            for i, ret in enumerate(returns):
                o = Outcome(first + i, list(batch[i]))
                if ret is not None:
                    o.status = FINISHED if ret.status.name == "COMPLETED" else FAILED
                    if o.status == FAILED:
                        o.error = str(ret._return_value)
                    elif isinstance(ret.return_value, dict):
                        o.run_id, o.target_accuracy = ret.return_value.get("run_id"), ret.return_value.get("target_accuracy")
                outcomes.append(o)
        if lost:  # the batch's other jobs may still be running, or queued behind those that are
            from xlt.heartbeat import wait_for_live_jobs

            wait_for_live_jobs(lost, lambda: self._job_runs(configs))
        self._settle(outcomes, configs, lost)
        return outcomes

    def _job_runs(self, configs: Dict[int, XltConfig]) -> Dict[int, list]:
        """job number -> the MLflow runs of that job of this sweep, newest first."""
        from xlt.runs import sweep_job_runs

        sweep_id = Path(str(self.config.hydra.sweep.dir)).name
        runs: Dict[int, list] = {}
        for uri, experiment in {(c.tracking_uri, c.tracking.experiment) for c in configs.values()}:
            for num, found in sweep_job_runs(uri, experiment, sweep_id).items():
                runs.setdefault(num, []).extend(found)
        return runs

    def _settle(self, outcomes: List[Outcome], configs: Dict[int, XltConfig], lost: Dict[int, str]) -> None:
        """Whatever the launcher reported, the MLflow store has the last word: a job whose process
        died has left its run RUNNING, which is ended FAILED here, and a job whose result the
        launcher dropped (`lost`: what the launcher said) is known by its run."""
        from xlt.runs import ERROR_TAG, end_runs

        runs = self._job_runs(configs)
        for o in outcomes:
            found = runs.get(o.num, [])
            if found:  # a launcher's result holds no run id
                o.run_id = o.run_id or found[0].info.run_id
            if found and found[0].info.end_time:
                o.seconds = (found[0].info.end_time - found[0].info.start_time) / 1000
            dead = [r for r in found if r.info.status == "RUNNING"]
            if dead:
                o.error = o.error or "the job's process died (killed, out of memory or past its time limit)"
                end_runs(configs[o.num].tracking_uri, dead, o.error)
                o.status, o.run_id = FAILED, dead[0].info.run_id
            elif o.status == NOT_STARTED:  # the launcher dropped its result: the run tells it
                finished = [r for r in found if r.info.status == "FINISHED"]
                run = (finished or found or [None])[0]
                o.run_id = run and run.info.run_id
                if finished:
                    o.status, o.error = FINISHED, ""
                    o.target_accuracy = run.data.metrics.get(TARGET_ACCURACY)
                elif run:
                    o.status, o.error = FAILED, run.data.tags.get(ERROR_TAG, f"its run ended {run.info.status}")
                else:
                    o.status = FAILED
                    o.error = "no run: the job died before its run started, or never started"
                    o.error += f" (the launcher: {lost[o.num]})" if o.num in lost else ""
            if o.status != FINISHED:
                log.error("#%d %s: %s", o.num, o.status, o.error)
