"""The end of every sweep, whatever became of its jobs: summary table, report, Aim sync, and
the exit status (1 if a job failed, 130 if the sweep was stopped).

The sync and the report never fail a sweep: each failure is one line, and `xlt sync` or
`xlt report` redoes it.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

from xlt.config import XltConfig
from xlt.sweep import summary
from xlt.sweep.outcome import Outcome, exit_status

log = logging.getLogger(__name__)


def finish_sweep(outcomes: List[Outcome], configs: Iterable[XltConfig], sweep_dir: Path) -> int:
    """Summary, report and sync of a sweep; returns its exit status."""
    configs = list(configs)
    path = summary.write(outcomes, sweep_dir)
    print(f"\n{summary.table(outcomes)}\n(written to {path})", flush=True)
    report_after_sweep(configs, outcomes, sweep_dir)  # before the sync: Aim gets the parent run too
    sync_after(configs)
    return exit_status(outcomes)


def report_after_sweep(configs: List[XltConfig], outcomes: List[Outcome], sweep_dir: Path) -> None:
    """The end-of-sweep report into `<sweep dir>/report/`; a failure is one line, never the sweep's."""
    run_ids = [o.run_id for o in outcomes if o.run_id]
    if not configs or not run_ids:
        return
    from xlt.report.publish import report

    try:
        out = report(configs[0].tracking_uri, sweep_dir / "report", sweep_id=sweep_dir.name, run_ids=run_ids,
                     outcomes=outcomes)
        log.info("Report: %s", out / "report.html")
    except Exception as e:  # noqa: BLE001 - the sweep's results stand without it; `xlt report` redoes it
        log.error("Report failed (%s: %s); `xlt report --sweep-id %s` retries it", type(e).__name__, e, sweep_dir.name)


def sync_after(configs: Iterable[XltConfig]) -> None:
    """The end-of-sweep (or end-of-run) sync into `tracking.aim.repo`, where switched on."""
    from xlt.tracking.store import store_exists

    targets: Dict[Tuple[str, Path], List[str]] = {}
    for cfg in configs:
        if cfg.tracking.aim.sync:
            experiments = targets.setdefault((cfg.tracking_uri, cfg.aim_repo), [])
            if cfg.tracking.experiment not in experiments:
                experiments.append(cfg.tracking.experiment)
    for (uri, repo), experiments in targets.items():
        if not store_exists(uri):
            continue
        from xlt.tracking.sync import sync

        try:
            print(sync(uri, repo, experiments, progress=False).line(repo), flush=True)
        except Exception as e:  # noqa: BLE001 - the sweep's results are safe in MLflow
            print(f"xlt: warning: Aim sync into {repo} failed ({type(e).__name__}: {e}); "
                  f"rerun it with `xlt sync --mlflow-tracking-uri {uri} --aim-repo {repo}`", flush=True)
