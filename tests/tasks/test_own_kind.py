"""A kind of task of one's own, outside xlt/ (issue 34): `task.module` names it, and the layers above ask
it as they ask the built-in kinds. Here sentence classification scored by macro-averaged F1, from
per-label counts, in-process on the tiny model."""
import mlflow
import numpy as np
import pytest

from jobs import run_job

MACRO_F1_KIND = '''
"""Sentence classification scored by macro-averaged F1 over the labels."""
import numpy as np

from xlt.tasks.sentence_classification import (  # what does not differ from the built-in kind
    POOLED, PEFT_TASK_TYPE, collator, columns, encode, model_class, prediction_alarms, prediction_arrays,
    preprocess_logits, row_problem)

METRICS = ("macro_f1", "accuracy")
STATISTICS = ("right", "rows", "tp_0", "fp_0", "fn_0", "tp_1", "fp_1", "fn_1", "tp_2", "fp_2", "fn_2")


def example_statistics(predictions, label_ids, task, features=None):
    pred, gold = np.asarray(predictions).argmax(-1), np.asarray(label_ids)
    counts = [pred == gold, np.ones_like(gold, dtype=bool)]
    for label in range(3):
        mine, theirs = pred == label, gold == label
        counts += [mine & theirs, mine & ~theirs, ~mine & theirs]
    return np.stack(counts, axis=-1).astype(np.float32)


def score(metric, sums):
    if metric == "accuracy":
        return sums[..., 0] / np.maximum(sums[..., 1], 1e-12)
    tp, fp, fn = sums[..., 2::3], sums[..., 3::3], sums[..., 4::3]
    return (2 * tp / np.maximum(2 * tp + fp + fn, 1e-12)).mean(-1)


def metrics(predictions, label_ids, task, features=None):
    sums = example_statistics(predictions, label_ids, task).sum(0)
    return {metric: float(score(metric, sums)) for metric in METRICS}
'''


def test_a_kind_of_ones_own_outside_xlt_runs_selects_and_headlines_by_its_metric(tmp_path, monkeypatch):
    from sklearn.metrics import f1_score

    import xlt

    (tmp_path / "kinds").mkdir()
    (tmp_path / "kinds" / "macro_f1_kind.py").write_text(MACRO_F1_KIND)
    monkeypatch.syspath_prepend(str(tmp_path / "kinds"))
    result = run_job(tmp_path / "out", "model=tiny", "data=sample", "technique=fine_tune", "train.epochs=1",
                     "task.module=macro_f1_kind", "tracking.aim.sync=false")
    uri = f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}"
    run = mlflow.MlflowClient(uri).get_run(result["run_id"])
    assert result["metric"] == "macro_f1" and run.data.tags["xlt.metric"] == "macro_f1"
    assert result["target_score"] == run.data.metrics["test/target_mean/macro_f1"]
    english = mlflow.MlflowClient(uri).get_metric_history(result["run_id"], "validation/en/macro_f1")
    best = max(m.value for m in english)  # the weights are selected by the kind's metric
    assert run.data.metrics["test/selected_step"] == min(m.step for m in english if m.value == best)
    frame = xlt.load_predictions(uri, result["run_id"])
    for lang in ("en", "de", "zh"):
        mine = frame[(frame["lang"] == lang) & (frame["weights"] == "selected")]
        expected = f1_score(mine["gold"], mine["pred"], average="macro", labels=[0, 1, 2], zero_division=0)
        assert run.data.metrics[f"test/{lang}/macro_f1"] == pytest.approx(expected, abs=1e-6)
        assert run.data.metrics[f"test/{lang}/accuracy"] == pytest.approx(np.mean(mine["gold"] == mine["pred"]))
