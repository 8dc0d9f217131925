"""Published scores for the presets' models, shipped as `references.csv`, every number with its
source (paper and table, repository README, or model card), in each metric the source gives
(QA: F1 and exact match). The report sets the runs of a model beside the
reference of the same task, protocol and model (the hub id in `model.path`), per language, and
says where their training budget differs from the reference's. A researcher's own files in the same
columns (`xlt report --references FILE`: numbers from a paper xlt does not ship, or a lab's earlier
runs) are read beside it, checked first: a file without a needed column, or a row without a number
or a source, is one line naming the file, the line and the fix.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import pandas as pd

from xlt.core.errors import ConfigError, first_line
from xlt.core.metrics import metric_name

CSV = Path(__file__).with_name("references.csv")
HEAD = ["model", "technique", "lang", "metric", "reference", "runs", "difference", "source"]


NEEDED = ["task", "protocol", "model", "lang", "metric", "value", "source"]  # train_rows, technique: optional


def references(extra: Sequence[Path] = ()) -> pd.DataFrame:
    """The shipped references and those of `extra` files, each row once."""
    tables = [_read(CSV)] + [_read(Path(path)) for path in extra]
    return pd.concat(tables, ignore_index=True).drop_duplicates(ignore_index=True)


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ConfigError("--references", f"{path}: no such file")
    try:  # only an empty (or blank) cell is missing: a model named None, a language NA, stay themselves
        table = pd.read_csv(path, dtype={"train_rows": "Int64"}, keep_default_na=False, na_values=[""],
                            skipinitialspace=True)
    except (OSError, ValueError) as e:  # pandas' parser errors are ValueErrors
        raise ConfigError("--references", f"{path}: cannot be read as CSV ({first_line(e)})") from None
    missing = [column for column in NEEDED if column not in table]
    if missing:
        raise ConfigError("--references", f"{path} has no column {missing[0]!r}; a references file needs the "
                                          f"columns {','.join(NEEDED)} (train_rows, technique optional)")
    table["value"] = pd.to_numeric(table["value"], errors="coerce")  # a word where a number belongs: NaN
    blank = table[NEEDED].isna().stack()  # (row, column), row by row
    if blank.any():
        line, column = blank[blank].index[0]  # the file's line: its header is line 1
        what = "a number in points (e.g. 71.1)" if column == "value" else "a value"
        raise ConfigError("--references", f"{path}:{line + 2}: {column} needs {what}")
    outside = ~table["value"].between(1, 100)
    if outside.any():  # a fraction would sit beside runs' points as if they had 100 times the score
        line = outside.to_numpy().argmax()
        raise ConfigError("--references", f"{path}:{line + 2}: value {table['value'].iloc[line]:g} is not in "
                                          "points: give 1 to 100 (71.1, not 0.711)")
    return table


def _key(run) -> Tuple[str, str, str]:
    p = run.data.params
    return p.get("task.name", ""), p.get("protocol.name", "zero_shot"), p.get("model.path", "").lower()


def beside_references(runs: List, table: Optional[pd.DataFrame] = None) -> Tuple[List[List[str]], List[str]]:
    """Rows (HEAD) of each finished (model, technique) group with a reference in `table` (default:
    the shipped ones), per language, and one budget note per group."""
    table, rows, notes = references() if table is None else table, [], []
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
