"""Per-example test predictions: every test row's gold label and class probabilities, for the
selected weights and for the last ones, kept as the run's artifact `predictions/test.npz`
(written by the job, xlt.train.job.test; read by the report and by notebooks).

The report's significance tests pair runs on these rows (xlt.report.significance), its alarms
read them (one class for nearly every row, a test split whose gold labels are all one value),
and a notebook reads them with `xlt.load_predictions(RUN_ID)`. One compressed file: float16
probabilities, about 12 bytes a row for both sets of weights.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np

ARTIFACT_DIR = "predictions"
FILE = "test.npz"


def save_predictions(job_dir: Path, labels: List[str], selected: Dict[str, object], last: Dict[str, object],
                     rows: Dict[str, np.ndarray]) -> Path:
    """Write `<job dir>/predictions/test.npz`: per row its language, its index in that language's
    test file (`rows`: the evaluated order is by length), the gold label, and both weights'
    probabilities and predicted labels."""
    langs = list(last)
    lang = np.concatenate([np.full(len(last[x].label_ids), x) for x in langs])
    row = np.concatenate([np.asarray(rows[x]) for x in langs])
    gold = np.concatenate([last[x].label_ids for x in langs]).astype(np.int16)
    probs = {name: np.concatenate([outputs[x].predictions for x in langs]).astype(np.float16)
             for name, outputs in (("selected", selected), ("last", last))}
    path = job_dir / ARTIFACT_DIR / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, lang=lang, row=row, gold=gold, labels=np.array(labels),
                        **{f"{name}_probs": p for name, p in probs.items()},
                        **{f"{name}_pred": p.argmax(-1).astype(np.int16) for name, p in probs.items()})
    return path


def read_predictions(path: Path):
    """A saved file as a DataFrame: lang, row, gold, weights (selected|last), pred, p_<label>..."""
    import pandas as pd

    with np.load(path) as saved:
        labels = [str(x) for x in saved["labels"]]
        frames = []
        for weights in ("selected", "last"):
            frame = pd.DataFrame({"lang": saved["lang"].astype(str), "row": saved["row"], "gold": saved["gold"],
                                  "weights": weights, "pred": saved[f"{weights}_pred"]})
            probs = saved[f"{weights}_probs"].astype(np.float32)
            frames.append(frame.assign(**{f"p_{label}": probs[:, i] for i, label in enumerate(labels)}))
    return pd.concat(frames, ignore_index=True)


def load_predictions(tracking_uri: str, run_id: str):
    """A run's per-example test predictions (see `read_predictions`); None if it has none."""
    import os
    import tempfile

    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per run in a notebook's loop
    client = mlflow.MlflowClient(tracking_uri)
    if not any(f.path == f"{ARTIFACT_DIR}/{FILE}" for f in client.list_artifacts(run_id, ARTIFACT_DIR)):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return read_predictions(Path(client.download_artifacts(run_id, f"{ARTIFACT_DIR}/{FILE}", tmp)))
