"""Per-example test predictions: for the selected weights and for the last ones, what the task's
kind keeps of each test example (xlt.tasks: class probabilities for sentence tasks, word-level
tags for token tasks) and the counts its metrics are sums of, kept as the run's artifact
`predictions/test.npz` (written by the job, xlt.train.job.test; read by the report and by notebooks).

The report's significance tests pair runs on these examples (xlt.report.significance), resampling
their counts, and a notebook reads them with `xlt.load_predictions(RUN_ID)`. One compressed file:
arrays named `gold*` describe the examples themselves and are kept once; the others are kept per
weights (`selected_<name>`, `last_<name>`). Sentence tasks: float16 probabilities, about 12 bytes
a row for both sets of weights; question answering: each answer's characters in its context.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

ARTIFACT_DIR = "predictions"
FILE = "test.npz"
WEIGHTS = ("selected", "last")
Examples = Dict[str, Dict[str, np.ndarray]]  # lang -> array name -> per-example values (`stats`: counts)


def save_predictions(job_dir: Path, labels: List[str], rows: Dict[str, Sequence[int]], selected: Examples,
                     last: Examples, statistics: Sequence[str]) -> Path:
    """Write `<job dir>/predictions/test.npz`: per example its language and its row in that
    language's test file (`rows`: the evaluated order is by length), then each weights' arrays."""
    langs = list(last)
    arrays = {"lang": np.concatenate([np.full(len(rows[x]), x) for x in langs]),
              "row": np.concatenate([np.asarray(rows[x]) for x in langs]),
              "labels": np.array(labels), "statistics": np.array(list(statistics))}
    for weights, examples in zip(WEIGHTS, (selected, last)):
        for name in examples[langs[0]]:
            joined = np.concatenate([examples[x][name] for x in langs])
            arrays[name if name.startswith("gold") else f"{weights}_{name}"] = joined
    path = job_dir / ARTIFACT_DIR / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def read_predictions(path: Path):
    """A saved file as a DataFrame, a row per example and weights (selected|last): lang, row, gold,
    weights, pred, and for sentence tasks p_<label>... (probabilities); for token tasks gold and
    pred are each sentence's tag names; for question answering pred_start and pred_end, the
    answer's characters in the row's context (no gold: the test file has the answers)."""
    import pandas as pd

    with np.load(path) as saved:
        labels = [str(x) for x in saved["labels"]]
        frames = []
        for weights in WEIGHTS:
            frame = pd.DataFrame({"lang": saved["lang"].astype(str), "row": saved["row"]})
            if "gold_first" in saved:  # question answering: a row per window, the first carries the answer
                first = saved["gold_first"]
                frame = frame[first].assign(weights=weights, pred_start=saved[f"{weights}_pred_start"][first],
                                            pred_end=saved[f"{weights}_pred_end"][first])
            elif "gold_tags" in saved:
                ends = np.cumsum(saved["gold_words"])[:-1]
                names = np.array(labels)
                frame["gold"] = [list(names[t]) for t in np.split(saved["gold_tags"], ends)]
                frame["weights"] = weights
                frame["pred"] = [list(names[t]) for t in np.split(saved[f"{weights}_pred_tags"], ends)]
            else:
                frame = frame.assign(gold=saved["gold"], weights=weights, pred=saved[f"{weights}_pred"])
                probs = saved[f"{weights}_probs"].astype(np.float32)
                frame = frame.assign(**{f"p_{label}": probs[:, i] for i, label in enumerate(labels)})
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class ItemCounts:
    """A run's per-item counts: per language, an array of rows x counts where row r of that
    language's test file is at index r, NaN where the run did not test it (an array a language, not
    a table: a 1,000-run report reads and pairs them in seconds)."""
    names: Tuple[str, ...]  # the counts, e.g. (right, rows) or (tp, fp, fn)
    by_lang: Dict[str, np.ndarray]

    @classmethod
    def of_rows(cls, names: Sequence[str], langs: np.ndarray, rows: np.ndarray, counts: np.ndarray) -> ItemCounts:
        """From a row per (piece of an) example: pieces of one item (lang, row) summed."""
        by_lang = {}
        for lang in sorted(set(langs.tolist())):
            mine, values = rows[langs == lang].astype(np.int64), counts[langs == lang]
            size = int(mine.max()) + 1
            dense = np.stack([np.bincount(mine, weights=values[:, c], minlength=size)
                              for c in range(values.shape[1])], axis=1)
            dense[np.bincount(mine, minlength=size) == 0] = np.nan
            by_lang[lang] = dense
        return cls(tuple(names), by_lang)

    @classmethod
    def of_frame(cls, frame) -> ItemCounts:
        """From a table indexed by (lang, row), a column per count (`read_statistics`'s form)."""
        return cls.of_rows(list(frame.columns), frame.index.get_level_values(0).to_numpy().astype(str),
                           frame.index.get_level_values(1).to_numpy(), frame.to_numpy(dtype=np.float64))

    def tested(self, lang: str) -> np.ndarray:
        """The items of `lang` the run tested, in row order: items x counts."""
        dense = self.by_lang.get(lang)
        return np.empty((0, len(self.names))) if dense is None else dense[~np.isnan(dense[:, 0])]

    def frame(self):
        """As a table indexed by (lang, row), sorted, a column per count."""
        import pandas as pd

        index = pd.MultiIndex.from_tuples([(lang, row) for lang, dense in self.by_lang.items()
                                           for row in np.flatnonzero(~np.isnan(dense[:, 0]))], names=["lang", "row"])
        counts = np.concatenate([np.empty((0, len(self.names)))] + [self.tested(lang) for lang in self.by_lang])
        return pd.DataFrame(counts, index=index, columns=list(self.names))


def read_item_counts(path: Path, weights: str = "selected") -> ItemCounts:
    """Per test item (lang, row) the counts its task's metrics are sums of, for those weights (a
    sentence split into pieces: summed). Files written before the tasks layer hold sentence tasks:
    (right, rows)."""
    with np.load(path) as saved:
        if f"{weights}_stats" in saved:
            names, stats = [str(x) for x in saved["statistics"]], saved[f"{weights}_stats"].astype(np.float64)
        else:
            names = ["right", "rows"]
            right = (saved[f"{weights}_pred"] == saved["gold"]).astype(np.float64)
            stats = np.stack([right, np.ones_like(right)], axis=-1)
        return ItemCounts.of_rows(names, saved["lang"].astype(str), saved["row"], stats)


def read_statistics(path: Path, weights: str = "selected"):
    """`read_item_counts` as a DataFrame indexed by (lang, row), a column per count."""
    return read_item_counts(path, weights).frame()


def _downloaded(tracking_uri: str, run_id: str, read):
    """`read` of a run's predictions file; None if it has none."""
    from xlt.tracking.mlflow_reader import MlflowReader

    reader = MlflowReader(tracking_uri)
    return _read_from_store(reader.artifacts(reader.client.get_run(run_id)), read)


def _read_from_store(store, read):
    """`read` of the predictions file in a run's artifact store (`MlflowReader.artifacts`: opened from
    its artifact location, no per-run look-up through the tracking server), read in place where the
    store is a local directory (a copy per run costs a 1,000-job report about 10 s); None if it has none."""
    import os
    import tempfile

    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    if isinstance(store, LocalArtifactRepository):
        path = Path(store.artifact_dir) / ARTIFACT_DIR / FILE
        return read(path) if path.is_file() else None
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per run in a notebook's loop
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = store.download_artifacts(f"{ARTIFACT_DIR}/{FILE}", tmp)
        except (MlflowException, OSError):  # no such file: the run kept no predictions
            return None
        return read(Path(path))


def load_predictions(tracking_uri: str, run_id: str):
    """A run's per-example test predictions (see `read_predictions`); None if it has none."""
    return _downloaded(tracking_uri, run_id, read_predictions)


def load_statistics(tracking_uri: str, run_id: str) -> Optional[object]:
    """A run's per-item counts for its selected weights (see `read_statistics`); None if it has none."""
    return _downloaded(tracking_uri, run_id, read_statistics)


READS_IN_FLIGHT = 8  # predictions files read at a time: from a server, each is a download


def statistics_of_runs(tracking_uri: str, runs: Sequence) -> Dict[str, ItemCounts]:
    """run id -> its per-item counts (`read_item_counts`), for the runs that kept predictions; files
    read straight from the artifact store, several at a time."""
    from concurrent.futures import ThreadPoolExecutor

    from xlt.tracking.mlflow_reader import MlflowReader

    reader = MlflowReader(tracking_uri)
    with ThreadPoolExecutor(READS_IN_FLIGHT, thread_name_prefix="xlt-predictions") as pool:
        frames = pool.map(lambda run: _read_from_store(reader.artifacts(run), read_item_counts), runs)
        found = dict(zip((run.info.run_id for run in runs), frames))
    return {run_id: frame for run_id, frame in found.items() if frame is not None}
