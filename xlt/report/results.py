"""A sweep's results as tidy tables, read from any MLflow store (SQLite file, server, ...).

    from xlt.report.results import load_results
    df = load_results("sqlite:///logs/mlflow.db", experiment="smoke")

`load_results` gives one row per run x split x language: the run's identity (id, name, status,
sweep, job), its model and technique, the seed and every field the runs differ in, then the final
value of every metric its task logs (accuracy; f1, precision, recall for token tasks), its
headline `metric` (the one that selected its weights: xlt.tasks) and that metric's value `score`,
and loss. `load_curves` gives the metric histories behind the report's charts.
"""
from __future__ import annotations

from typing import Iterable, List, Optional

import pandas as pd

from xlt.config import TaskConfig
from xlt.core import tags
from xlt.core.metrics import SELECTED_STEP, TARGET_MEAN, headline_metric, metric_name, parse_metric_name
from xlt.tasks import task_kind
from xlt.tracking.heartbeat import died, seen_status, silence
from xlt.tracking.mlflow_reader import MlflowReader

SPLITS = ("test", "test_last", "validation")
# Params that describe a run but are no experimental choice, or repeat `model`/`technique`/`task.name`.
# Content hashes, commits, paths and ids are never swept fields, whatever their values.
_NOT_SWEPT = ("model", "technique", "languages", "model.", "technique.", "tracking.", "output_dir",
              "sweep.", "languages.", "task.labels", "task.text_fields", "task.languages", "task.hub_",
              "data.hub_id", "data.dir", "data.commit", "protocol.module")
COVERS = "protocol.target"  # the language a translate-train run covers: a column of the table, not a row


CONDITIONS = {"host": tags.HOST, "device": tags.DEVICE, "parallel_jobs": tags.PARALLEL_JOBS, "load": tags.LOAD,
               "cpus": tags.CPUS}  # what else ran beside a run: its durations compare only alike


class NoRuns(LookupError):
    """Nothing to report on: a clear message for the command line."""


def find_runs(tracking_uri: str, experiment: Optional[str] = None, sweep_id: Optional[str] = None,
              run_ids: Optional[Iterable[str]] = None) -> List:
    """The job runs (not the sweeps' parent runs) of an experiment, a sweep, or a list of run ids,
    read in a few searches (xlt.tracking.mlflow_reader)."""
    reader = MlflowReader(tracking_uri)
    if run_ids is not None:
        run_ids = list(dict.fromkeys(run_ids))
        runs = reader.runs_by_id(run_ids)
        missing = sorted(set(run_ids) - {r.info.run_id for r in runs})
        if missing:
            raise NoRuns(f"no run {missing[0]!r} in {tracking_uri}")
        return runs
    if experiment:
        found = reader.client.get_experiment_by_name(experiment)
        if found is None:
            names = ", ".join(e.name for e in reader.client.search_experiments())
            raise NoRuns(f"no experiment {experiment!r} in {tracking_uri}; it has: {names or 'none'}")
        experiments = [found.experiment_id]
    else:
        experiments = [e.experiment_id for e in reader.client.search_experiments()]
    query = f"tags.`{tags.SWEEP}` = '{sweep_id}'" if sweep_id else ""
    runs = [r for r in reader.search(experiments, query, order_by=["attributes.start_time ASC"])
            if r.data.tags.get(tags.KIND) != "sweep"]
    if not runs:
        where = f"sweep {sweep_id!r}" if sweep_id else f"experiment {experiment!r}" if experiment else "any experiment"
        raise NoRuns(f"no runs in {where} of {tracking_uri}")
    return runs


def swept_fields(runs: List) -> List[str]:
    """The config fields whose value differs between runs (the seed always counts)."""
    keys = sorted({k for r in runs for k in r.data.params if not k.startswith(_NOT_SWEPT) and k not in _NOT_SWEPT})
    swept = [k for k in keys if len({r.data.params.get(k) for r in runs}) > 1]
    return ["train.seed"] + [k for k in swept if k != "train.seed"]


def varied_fields(runs: pd.DataFrame) -> List[str]:
    """The config fields of a `run_table` swept beside the model and the technique, the seed aside:
    what a row of the report and a finding compare. A field counts only where it differs between
    runs of one model and technique: the learning rates and epochs each technique brings are its
    defaults, not a sweep over them."""
    fields = [c for c in runs.columns if "." in c and c not in ("train.seed", COVERS)]
    if runs.empty:
        return fields
    within = runs.groupby(["model", "technique"], dropna=False)
    return [f for f in fields if (within[f].nunique(dropna=False) > 1).any()]


def _number(text: Optional[str]):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return int(value) if value.is_integer() and "." not in str(text) and "e" not in str(text).lower() else value


def run_table(runs: List) -> pd.DataFrame:
    """One row per run: identity, model, technique, swept fields, duration, selected step."""
    fields = swept_fields(runs)
    rows = []
    for r in runs:
        p, t, m = r.data.params, r.data.tags, r.data.metrics
        end = r.info.end_time or r.info.start_time
        rows.append({
            "run_id": r.info.run_id, "run_name": r.info.run_name, "status": seen_status(r),
            "sweep_id": t.get(tags.SWEEP), "job_num": _number(t.get(tags.JOB_NUM)),
            "model": p.get("model", t.get(tags.MODEL)), "technique": p.get("technique", t.get(tags.TECHNIQUE)),
            **{field: _number(p.get(field)) for field in fields},
            "duration_s": (end - r.info.start_time) / 1000,
            "selected_step": m.get(SELECTED_STEP),
            "error": t.get(tags.ERROR) or (died(r) if silence(r) is not None else ""),
            "alarms": t.get(tags.ALARMS, ""),
            **{name: t.get(tag) for name, tag in CONDITIONS.items()},
        })
    return pd.DataFrame(rows)


def languages_of(runs: List) -> List[str]:
    for r in runs:
        if r.data.params.get("languages"):
            return r.data.params["languages"].split(",")
    return sorted({k.lang for r in runs for k in map(parse_metric_name, r.data.metrics)
                   if k and k.lang and k.lang != TARGET_MEAN})


def results_from_runs(runs: List) -> pd.DataFrame:
    """The tidy table: one row per run x split x language (languages, then `target_mean`)."""
    table = run_table(runs).set_index("run_id")
    langs = languages_of(runs) + [TARGET_MEAN]
    rows, logged = [], {}  # logged: every metric the runs' task kinds log, in their order
    for r in runs:
        m, metric, names = r.data.metrics, headline_metric(r.data.tags), task_kind(task_of(r)).METRICS
        logged.update(dict.fromkeys(names))
        for split in SPLITS:
            for lang in langs:
                values = {name: m.get(metric_name(split, name, lang)) for name in names}
                rows.append({"run_id": r.info.run_id, "split": split, "lang": lang, "metric": metric,
                             "score": m.get(metric_name(split, metric, lang)), **values,
                             "loss": m.get(metric_name(split, "loss", lang))})
    tidy = pd.DataFrame(rows).join(table, on="run_id")
    front = ["run_id", "run_name", "status", "model", "technique"]
    return tidy[front + [c for c in table.columns if c not in front] + ["split", "lang", "metric", "score", *logged,
                                                                        "loss"]]


def task_of(run) -> TaskConfig:
    """A run's task, as far as reading its numbers needs it: its kind (runs made before task kinds:
    sentence classification)."""
    params = run.data.params
    return TaskConfig(name=params.get("task.name", "task"), labels=[], text_fields=[], languages=[], hub_id="",
                      kind=params.get("task.kind") or TaskConfig.kind,
                      module=None if params.get("task.module") in (None, "None") else params["task.module"])


def report_metric(runs: List) -> str:
    """The metric a report scores its runs by: their headline metric (the most common, if mixed)."""
    counts = pd.Series([headline_metric(r.data.tags) for r in runs])
    return str(counts.mode().iloc[0]) if len(counts) else "accuracy"


def load_results(tracking_uri: str, experiment: Optional[str] = None, sweep_id: Optional[str] = None,
                 run_ids: Optional[Iterable[str]] = None) -> pd.DataFrame:
    """The tidy results of an experiment, a sweep or given runs, for pandas and notebooks."""
    return results_from_runs(find_runs(tracking_uri, experiment, sweep_id, run_ids))


def load_curves(tracking_uri: str, runs: List, names: Iterable[str]) -> pd.DataFrame:
    """Metric histories: one row per run x metric x point (step, value, seconds since the run started),
    read in bulk (a SQL query per few hundred runs)."""
    starts = {r.info.run_id: r.info.start_time for r in runs}
    rows = [{"run_id": run_id, "metric": name, "step": step, "value": value, "seconds": (time - starts[run_id]) / 1000}
            for run_id, name, points in MlflowReader(tracking_uri).histories(runs, list(names))
            for value, time, step in points]
    return pd.DataFrame(rows, columns=["run_id", "metric", "step", "value", "seconds"])
