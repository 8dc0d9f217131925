"""Published scores for the presets' models, shipped as `references.csv`, every number with its
source (paper and table, repository README, or model card), in each metric the source gives
(QA: F1 and exact match). The report sets the runs of a model beside the
reference of the same task, protocol and model (the hub id in `model.path`), per language, and
says where their training budget differs from the reference's.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import pandas as pd

from xlt.core.metrics import metric_name

CSV = Path(__file__).with_name("references.csv")
HEAD = ["model", "technique", "lang", "metric", "reference", "runs", "difference", "source"]


def references() -> pd.DataFrame:
    return pd.read_csv(CSV, dtype={"train_rows": "Int64"})


def _key(run) -> Tuple[str, str, str]:
    p = run.data.params
    return p.get("task.name", ""), p.get("protocol.name", "zero_shot"), p.get("model.path", "").lower()


def beside_references(runs: List) -> Tuple[List[List[str]], List[str]]:
    """Rows (HEAD) of each finished (model, technique) group with a reference, per language, and one
    budget note per group."""
    table, rows, notes = references(), [], []
    known = table.assign(key=list(zip(table["task"], table["protocol"], table["model"].str.lower())))
    groups: dict = {}
    for run in runs:
        if run.info.status == "FINISHED":
            groups.setdefault((_key(run), run.data.params.get("technique", "?")), []).append(run)
    for (key, technique), members in sorted(groups.items()):
        published = known[known["key"] == key]
        if published.empty:
            continue
        name = members[0].data.params.get("model", key[2])
        for ref in published.itertuples():
            values = [r.data.metrics.get(metric_name("test", ref.metric, ref.lang)) for r in members]
            values = [100 * v for v in values if v is not None]
            mean = sum(values) / len(values) if values else None
            rows.append([name, technique, ref.lang, ref.metric, f"{ref.value:.1f}",
                         f"{mean:.1f}" if mean is not None else "-",
                         f"{mean - ref.value:+.1f}" if mean is not None else "-", ref.source])
        notes.append(_budget(name, technique, members, published))
    return rows, notes


def _budget(name: str, technique: str, members: List, published: pd.DataFrame) -> str:
    trained = sorted({int(r.data.metrics["train/rows"]) for r in members if "train/rows" in r.data.metrics})
    epochs = sorted({r.data.params.get("train.epochs", "?") for r in members})
    ref_rows = published["train_rows"].dropna()
    ref = (f"the reference fine-tuned on {int(ref_rows.iloc[0]):,} rows (the full English training set)"
           if len(ref_rows) else "the reference's source does not state its training rows")
    ran = f"{'-'.join(f'{n:,}' for n in trained) or '?'} rows x {', '.join(epochs)} epochs"
    differs = not len(ref_rows) or trained != [int(ref_rows.iloc[0])]
    said = f"{name} {technique}: {len(members)} runs trained on {ran}; {ref}"
    said += ": the budgets differ, and so may the numbers" if differs else ""
    if technique != "fine_tune":
        said += f"; the reference fine-tunes every weight, these runs use {technique}"
    return said + "."
