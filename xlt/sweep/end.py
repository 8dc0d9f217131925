"""The end of every sweep, whatever became of its jobs: summary table, report, Aim sync, and
the exit status (130 if the sweep was stopped, 1 if a job, the report or the sync failed).

A failed report or sync costs no job its result: each failure is one line naming the command
that redoes it (`xlt report`, `xlt sync`), and the exit status says that something failed.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from xlt.config import XltConfig
from xlt.core.errors import first_line
from xlt.sweep import summary
from xlt.sweep.outcome import Outcome, exit_status

log = logging.getLogger(__name__)


def finish_sweep(outcomes: List[Outcome], configs: Iterable[XltConfig], sweep_dir: Path) -> int:
    """Summary, report and sync of a sweep; returns its exit status."""
    configs = list(configs)
    path = summary.write(outcomes, sweep_dir)
    print(f"\n{summary.table(outcomes)}\n(written to {path})", flush=True)
    reported = report_after_sweep(configs, outcomes, sweep_dir)  # before the sync: Aim gets the parent run too
    synced = sync_after(configs)
    return exit_status(outcomes) or (0 if reported and synced else 1)


def report_after_sweep(configs: List[XltConfig], outcomes: List[Outcome], sweep_dir: Path) -> bool:
    """The end-of-sweep report into `<sweep dir>/report/`; a failure is one line. False if it failed."""
    run_ids = [o.run_id for o in outcomes if o.run_id]
    if not configs or not run_ids:
        return True
    from xlt.report.publish import report

    try:
        out = report(configs[0].tracking_uri, sweep_dir / "report", sweep_id=sweep_dir.name, run_ids=run_ids,
                     outcomes=outcomes, command=_command(sweep_dir))
        log.info("Report: %s", out / "report.html")
        return True
    except Exception as e:  # noqa: BLE001 - the sweep's results stand without it; `xlt report` redoes it
        log.error("Report failed (%s: %s); `xlt report --sweep-id %s` retries it", type(e).__name__, first_line(e),
                  sweep_dir.name)
        return False


def _command(sweep_dir: Path) -> Optional[str]:
    """The sweep's command line, as Hydra saved it in `<sweep dir>/multirun.yaml`."""
    from omegaconf import OmegaConf

    try:
        overrides = OmegaConf.load(sweep_dir / "multirun.yaml").hydra.overrides.task
    except Exception:  # noqa: BLE001 - a header line less, never a report less
        return None
    return "python run.py -m " + " ".join(map(str, overrides))


def sync_after(configs: Iterable[XltConfig]) -> bool:
    """The end-of-sweep (or end-of-run) sync into `tracking.aim.repo`, where switched on. False if
    a sync failed (one line each)."""
    from xlt.tracking.store import store_exists

    targets: Dict[Tuple[str, Path], List[str]] = {}
    for cfg in configs:
        if cfg.tracking.aim.sync:
            experiments = targets.setdefault((cfg.tracking_uri, cfg.aim_repo), [])
            if cfg.tracking.experiment not in experiments:
                experiments.append(cfg.tracking.experiment)
    ok = True
    for (uri, repo), experiments in targets.items():
        if not store_exists(uri):
            continue
        from xlt.tracking.sync import repo_problem, sync

        try:
            problem = repo_problem(repo)
            if problem:
                raise RuntimeError(problem)
            print(sync(uri, repo, experiments, progress=False).line(repo), flush=True)
        except Exception as e:  # noqa: BLE001 - the sweep's results are safe in MLflow
            print(f"xlt: error: Aim sync into {repo} failed ({type(e).__name__}: {first_line(e)}); "
                  f"rerun it with `xlt sync --mlflow-tracking-uri {uri} --aim-repo {repo}`", flush=True)
            ok = False
    return ok
