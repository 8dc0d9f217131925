"""`xlt report`: the report of an experiment, a sweep or given runs, written to a directory and,
for a sweep, logged with its summary metrics to a parent MLflow run under which the MLflow UI
nests the sweep's runs."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

from xlt.core import tags
from xlt.core.metrics import headline_metric, target_metric, target_score
from xlt.report.references import references as published
from xlt.report.render import Report
from xlt.report.results import find_runs


def sweep_status(statuses: List[str]) -> str:
    """How a sweep's parent run ends: FAILED when a job failed, KILLED when the sweep was stopped
    (a job KILLED or NOT STARTED), else FINISHED."""
    if "FAILED" in statuses:
        return "FAILED"
    return "KILLED" if {"KILLED", "NOT STARTED"} & set(statuses) else "FINISHED"


def log_parent_run(tracking_uri: str, sweep_id: str, runs: List, out: Path, status: str = "FINISHED") -> str:
    """A run per sweep holding the report and summary metrics; the sweep's runs become its children."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    experiment_id = runs[0].info.experiment_id
    query = f"tags.`{tags.SWEEP}` = '{sweep_id}' and tags.`{tags.KIND}` = 'sweep'"
    existing = client.search_runs([experiment_id], query)
    parent = existing[0] if existing else client.create_run(  # spans the sweep in the UI's time columns
        experiment_id, start_time=min(r.info.start_time for r in runs), run_name=f"sweep {sweep_id}",
        tags={tags.SWEEP: sweep_id, tags.KIND: "sweep"})
    parent_id = parent.info.run_id
    for run in runs:
        client.set_tag(run.info.run_id, tags.PARENT, parent_id)
    scores = [target_score(r) for r in runs if r.info.status == "FINISHED"]
    scores = [s for s in scores if s is not None]
    metric = headline_metric(runs[0].data.tags)
    metrics = {f"runs/{status.lower()}": sum(r.info.status == status for r in runs)
               for status in ("FINISHED", "FAILED", "KILLED")}
    if scores:
        metrics[target_metric(metric) + "_best"] = max(scores)
    for name, value in metrics.items():
        client.log_metric(parent_id, name, value)
    client.log_artifacts(parent_id, str(out), "report")
    client.set_terminated(parent_id, status)
    return parent_id


def report(tracking_uri: str, out: Path, experiment: Optional[str] = None,  # noqa: PLR0913 - all optional
           sweep_id: Optional[str] = None, run_ids: Optional[List[str]] = None, outcomes: Optional[List] = None,
           command: Optional[str] = None, references: Sequence[Path] = ()) -> Path:
    """Write the report of an experiment, a sweep or given runs into `out`; returns `out`.
    `command`: the command line that ran them, where known (the report's header shows it);
    `references`: CSV files of published scores beside the shipped ones (xlt.report.references)."""
    table = published(references)  # a bad file is one line before the store is read
    runs = find_runs(tracking_uri, experiment, sweep_id, run_ids)
    title = f"Sweep {sweep_id}" if sweep_id else f"Experiment {experiment}" if experiment else "All runs"
    Report(tracking_uri, runs, title, outcomes, command, table).write(out)
    if sweep_id:
        statuses = [o.status for o in outcomes] if outcomes is not None else [r.info.status for r in runs]
        log_parent_run(tracking_uri, sweep_id, runs, out, sweep_status(statuses))
    return out
