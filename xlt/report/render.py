"""The report's content and its rendering: `results.csv`, `report.md` and a self-contained
`report.html` (table, findings, charts, failed jobs) of a set of MLflow runs."""
from __future__ import annotations

import base64
import functools
import html
import logging
from pathlib import Path
from typing import Dict, List, Optional

import pandas as pd

from xlt.core import tags
from xlt.core.errors import one_line
from xlt.core.metrics import TARGET_MEAN
from xlt.core.secrets import scrub
from xlt.report import charts
from xlt.report.findings import PROTOCOL, findings, sides
from xlt.report.header import what_ran
from xlt.report.references import HEAD, beside_references
from xlt.report.results import (
    languages_of,
    load_curves,
    report_metric,
    results_from_runs,
    run_table,
    task_of,
    varied_fields,
)
from xlt.report.significance import METHOD, Examples, cell_interval, compare
from xlt.tasks import task_kind

log = logging.getLogger(__name__)
METHOD_NOTE = (
    "Each comparison resamples test items (an example with its translations counts once, as the "
    "languages of one item are not independent) and, where each side has two or more seeds, the seeds too "
    f"(a hierarchical bootstrap: {METHOD}). With one seed a side the seeds' variance is unknown, so a "
    "difference real over the items is reported as a lead on these items, never as a verdict. A comparison "
    "within noise states the smallest difference it would detect with 80% power. Runs whose alarms say they "
    "learned nothing rank nothing; durations are compared only between jobs that ran alone on one host "
    "and device.")


def _cell(values: pd.Series, interval=None) -> str:
    """`0.734 ±0.013`: the mean and the half-width of its 95% interval (xlt.report.significance)."""
    values = values.dropna()
    if values.empty:
        return "-"
    return f"{values.mean():.3f}" + (f" ±{(interval[1] - interval[0]) / 2:.3f}" if interval else "")


def accuracy_table(runs: pd.DataFrame, tidy: pd.DataFrame, langs: List[str], train_language: str) -> pd.DataFrame:
    """Rows model x technique (x swept fields but the seed), columns languages, target mean, gap:
    each cell the accuracies of the runs sharing the row (their ids in the column `run_ids`).
    Returns the rows and the value columns."""
    hyper = varied_fields(runs)
    done = runs[runs["status"] == "FINISHED"]
    test = tidy[(tidy["split"] == "test") & tidy["run_id"].isin(done["run_id"])]
    wide = test.pivot_table(index="run_id", columns="lang", values="score")
    if train_language in wide and TARGET_MEAN in wide:
        wide["gap"] = wide[train_language] - wide[TARGET_MEAN]
    wide = done.set_index("run_id")[["model", "technique", *hyper]].join(wide)
    columns = [c for c in [*langs, TARGET_MEAN, "gap"] if c in wide]
    rows = []
    for key, group in wide.groupby(["model", "technique", *hyper], dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(["model", "technique", *hyper], key), runs=len(group), run_ids=list(group.index))
        row.update({c: group[c] for c in columns})
        rows.append(row)
    return pd.DataFrame(rows), columns


class Cells:
    """The table's numbers: each cell's interval, and which cell of a column is significantly best."""

    def __init__(self, rows: pd.DataFrame, columns: List[str], examples: Optional[Examples], langs: List[str],
                 train_language: str, runs: pd.DataFrame):
        self.rows, self.columns, self.examples, self.runs = rows, columns, examples, runs.set_index("run_id")
        self.targets = [lang for lang in langs if lang != train_language]

    def _sides(self, i) -> List[List[str]]:
        return sides(self.runs.loc[self.rows.at[i, "run_ids"]].reset_index())

    def _langs_of(self, column: str) -> List[str]:
        return self.targets if column == TARGET_MEAN else [column]

    def interval(self, i, column: str):
        if column == "gap":
            return None
        values = self.rows.at[i, column].dropna()  # the row's runs that tested this column
        counts = None
        if self.examples is not None and len(values) == 1 and values.index[0] in self.examples:
            counts = self.examples.counts(values.index[0], self._langs_of(column))
        return cell_interval(list(values), counts, self.examples and self.examples.score)

    def best(self) -> Dict[str, int]:
        """score column -> the row that is best and, where the runs have predictions, significantly
        ahead of the next row: a best within noise is no best. (The gap has no test: never bold.)"""
        out = {}
        for c in self.columns:
            means = self.rows[c].map(lambda v: v.mean()).dropna()
            if len(means) < 2 or c == "gap":
                continue
            order = means.sort_values(ascending=False).index
            first, second = order[0], order[1]
            test = compare(self.examples, self._sides(first), self._sides(second), [], self._langs_of(c))
            if test is None or test[TARGET_MEAN].significant:
                out[c] = first
        return out


def _table_text(cells: Cells, bold) -> List[List[str]]:
    """Cells as text, the significantly best of each column passed through `bold`."""
    rows, columns, best = cells.rows, cells.columns, cells.best()
    keys = [c for c in rows.columns if c not in columns and c != "run_ids"]
    out = []
    for i, row in rows.iterrows():
        texts = [_cell(row[c], cells.interval(i, c)) for c in columns]
        out.append([str(row[k]) for k in keys] + [bold(t) if best.get(c) == i else t for c, t in zip(columns, texts)])
    return [keys + [("target mean" if c == TARGET_MEAN else c) for c in columns]] + out


def _markdown_table(lines: List[List[str]]) -> str:
    head, *body = lines
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] +
                     ["| " + " | ".join(r) + " |" for r in body])


def _html_table(lines: List[List[str]]) -> str:
    head, *body = lines
    rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body)
    return "<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + f"</tr>{rows}</table>"


class Report:
    """Everything the report shows, computed once; `write` renders it."""

    def __init__(self, tracking_uri: str, runs: List, title: str, outcomes: Optional[List] = None,
                 command: Optional[str] = None, references: Optional[pd.DataFrame] = None):
        self.tracking_uri, self.title, self.mlflow_runs, self.command = tracking_uri, title, runs, command
        self.runs, self.tidy = run_table(runs), results_from_runs(runs)
        self.langs = languages_of(runs)
        self.train_language = next((r.data.params["data.train_language"] for r in runs
                                    if "data.train_language" in r.data.params), "en")
        self.rows, self.columns = accuracy_table(self.runs, self.tidy, self.langs, self.train_language)
        self.metric = report_metric(runs)
        self.examples = _examples(tracking_uri, [r for r in runs if r.info.status == "FINISHED"], self.metric)
        self.cells = Cells(self.rows, self.columns, self.examples, self.langs, self.train_language, self.runs)
        self.findings = findings(self.runs, self.tidy, self.train_language, self.examples, self.metric)
        self.problems = self._problems(outcomes)
        self.header = what_ran(runs, tracking_uri, self.train_language, command and scrub(command))
        self.references, self.budgets = beside_references(runs, references)
        labels = next((r.data.params["task.labels"] for r in runs if r.data.params.get("task.labels")), "")
        # A uniform guess over the labels, where the metric is accuracy over them (F1 has no such line).
        self.chance = 1 / len(labels.split(",")) if labels and self.metric == "accuracy" else None
        self.alarms = [(r.info.run_name, r.info.run_id, alarm) for r in runs
                       for alarm in filter(None, r.data.tags.get(tags.ALARMS, "").split("; "))]

    def _problems(self, outcomes) -> List[List[str]]:
        """Failed, killed, skipped and unstarted jobs: from the sweep's outcomes, else the runs' statuses
        (credentials in a command line or an error masked: the report is logged and synced)."""
        if outcomes is not None:
            rows = [[f"#{o.num}", " ".join(o.overrides), o.status, one_line(o.error) or "-"] for o in outcomes
                    if o.status != "FINISHED"]
        else:
            bad = self.runs[self.runs["status"] != "FINISHED"]
            rows = [[r.run_name, r.run_id, r.status, one_line(r.error) or "-"] for r in bad.itertuples()]
        return [[scrub(cell) for cell in row] for row in rows]

    def charts(self, out: Path) -> Dict[str, Path]:
        done = self.runs[self.runs["status"] == "FINISHED"]
        names = ["train/loss"] + [f"validation/{lang}/{self.metric}" for lang in self.langs + [TARGET_MEAN]]
        curves = load_curves(self.tracking_uri, [r for r in self.mlflow_runs if r.info.status == "FINISHED"], names)
        made = {}
        if done.empty:
            return made
        fields = varied_fields(done)
        made[f"Validation {self.metric} by step"] = charts.curves_by_language(
            done, curves, self.langs, "step", out / "validation_by_step.png", fields, self.chance)
        made[f"Validation {self.metric} by wall-clock time"] = charts.curves_by_language(
            done, curves, self.langs, "seconds", out / "validation_by_time.png", fields, self.chance)
        made["Training loss"] = charts.training_loss(done, curves, out / "training_loss.png", fields)
        test = self.tidy[(self.tidy["split"] == "test") & self.tidy["run_id"].isin(done["run_id"])]
        # A row per model, and per protocol where the runs differ in it.
        row = test["model"] + (" " + test[PROTOCOL].astype(str) if PROTOCOL in test else "")
        pivots = {t: g.assign(row=row[g.index]).pivot_table(index="row", columns="lang", values="score")
                  for t, g in test.groupby("technique")}
        heat = {t: frame[[c for c in self.langs + [TARGET_MEAN] if c in frame]] for t, frame in pivots.items()}
        made[f"Test {self.metric}, model x language"] = charts.heatmaps(heat, out / "heatmap.png", self.metric)
        score = test[test["lang"] == TARGET_MEAN].set_index("run_id")["score"]
        scores = done.assign(score=done["run_id"].map(score))
        for field in fields:
            if scores[field].nunique() > 1:
                made[f"{self.metric.capitalize()} by {field}"] = charts.by_hyperparameter(
                    self._field_points(scores, field), field, out / f"by_{field}.png", self.chance, self.metric)
        return made

    def _field_points(self, scores: pd.DataFrame, field: str) -> pd.DataFrame:
        """model, technique, the field's value, and the mean target-language score with its 95% interval
        (t over several runs, Wilson over one run's target-language test rows)."""
        targets = [lang for lang in self.langs if lang != self.train_language]
        rows = []
        for (model, technique, value), group in scores.groupby(["model", "technique", field]):
            one = None
            if len(group) == 1 and self.examples is not None and group["run_id"].iloc[0] in self.examples:
                one = self.examples.counts(group["run_id"].iloc[0], targets)
            low, high = cell_interval(list(group["score"]), one, self.examples and self.examples.score) or \
                (float("nan"), float("nan"))
            rows.append({"model": model, "technique": technique, field: value, "mean": group["score"].mean(),
                         "low": low, "high": high})
        return pd.DataFrame(rows)

    def write(self, out: Path) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        self.tidy.to_csv(out / "results.csv", index=False)
        images = self.charts(out)
        counts = self.runs["status"].value_counts()
        tally = ", ".join(f"{n} {s.lower()}" for s, n in counts.items())
        one_run = "Wilson over one run's test rows" if self.metric == "accuracy" else \
            "the bootstrap over one run's test items"
        intro = (f"{len(self.runs)} runs ({tally}); test {self.metric} with the weights `train.select` chose, the "
                 f"mean of the runs sharing a row ± half its 95% interval (t over several runs, {one_run}); gap = "
                 f"{self.train_language} minus the target mean; bold: the best of a column where "
                 f"it is significantly ahead of the next ({METHOD}).")
        table = _table_text(self.cells, lambda s: f"**{s}**") if not self.rows.empty else None
        md = [f"# {self.title}", "", "## What ran", ""] + [f"- {line}" for line in self.header]
        md += ["", intro, "", _markdown_table(table) if table else "No finished run.", "",
               "## Findings", ""] + [f"- {f}" for f in self.findings]
        if self.references:
            md += ["", "## Published references", "", _markdown_table([HEAD] + self.references), ""]
            md += [f"- {note}" for note in self.budgets]
        if self.alarms:
            md += ["", "## Alarms", "", "The numbers of these runs look broken, not merely weak:", ""]
            md += [f"- {name} ({run_id}): {alarm}" for name, run_id, alarm in self.alarms]
        if images:
            md += ["", "## Charts", ""] + [f"### {name}\n\n![{name}]({path.name})\n" for name, path in images.items()]
        if self.problems:
            md += ["## Failed and skipped jobs", "", _markdown_table([["job", "what", "status", "error"]]
                                                                     + self.problems)]
        md += ["", "## How the findings are tested", "", METHOD_NOTE]
        (out / "report.md").write_text("\n".join(md) + "\n")
        (out / "report.html").write_text(self._html(intro, images))
        return out

    def _html(self, intro: str, images: Dict[str, Path]) -> str:
        table = _table_text(self.cells, lambda s: f"<b>{s}</b>") if not self.rows.empty else None
        figures = "".join(
            f"<h3>{html.escape(name)}</h3><img alt='{html.escape(name)}' src='data:image/png;base64,"
            f"{base64.b64encode(path.read_bytes()).decode()}'>" for name, path in images.items())
        problems = ""
        if self.problems:
            rows = [["job", "what", "status", "error"]] + [[html.escape(c) for c in p] for p in self.problems]
            problems = f"<h2>Failed and skipped jobs</h2>{_html_table(rows)}"
        items = "".join(f"<li>{html.escape(f)}</li>" for f in self.findings)
        header = "".join(f"<li>{html.escape(line)}</li>" for line in self.header)
        alarms = "".join(f"<li>{html.escape(f'{name} ({run_id}): {alarm}')}</li>"
                         for name, run_id, alarm in self.alarms)
        if alarms:
            alarms = f"<h2>Alarms</h2><p>The numbers of these runs look broken, not merely weak:</p><ul>{alarms}</ul>"
        charts_part = f"<h2>Charts</h2>{figures}" if images else ""
        references = ""
        if self.references:
            notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.budgets)
            rows = [HEAD] + [[html.escape(c) for c in r] for r in self.references]
            references = f"<h2>Published references</h2>{_html_table(rows)}<ul>{notes}</ul>"
        return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
th{{background:#f3f3f3}}img{{max-width:100%;border:1px solid #eee}}</style></head><body>
<h1>{html.escape(self.title)}</h1><h2>What ran</h2><ul>{header}</ul><p>{html.escape(intro)}</p>
{_html_table(table) if table else "<p>No finished run.</p>"}
<h2>Findings</h2><ul>{items}</ul>{references}{alarms}{charts_part}{problems}
<h2>How the findings are tested</h2><p>{html.escape(METHOD_NOTE)}</p>
</body></html>
"""


def _examples(tracking_uri: str, runs: List, metric: str) -> Optional[Examples]:
    """Each finished run's per-item counts (the runs that kept predictions) and how their task's kind
    scores `metric` from summed counts; None where no run kept them."""
    from xlt.tracking.predictions import statistics_of_runs

    found = statistics_of_runs(tracking_uri, runs)
    if not found:
        return None
    kind = task_kind(task_of(runs[0]))
    return Examples(found, functools.partial(kind.score, metric))
