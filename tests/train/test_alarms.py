"""Alarms (issue 24): each fires on a run made to trigger it and names the language and the number;
a healthy run raises none. Units on known arrays, then runs of the tiny model made broken."""
import shutil

import numpy as np
import pytest

from xlt.config import TaskConfig
from xlt.core import tags
from xlt.tasks import sentence_classification
from xlt.train import alarms as every_kind

from commands import run_xlt
from stores import mlflow_runs

LABELS = ["entailment", "neutral", "contradiction"]


def alarms(labels, train_language, tested, training, validation):
    """A sentence task's alarms as a job raises them: its kind's from the test predictions (which
    it reads as probabilities), then every kind's (xlt.train.alarms)."""
    task = TaskConfig(name="t", labels=labels, text_fields=["a", "b"], languages=[], hub_id="")
    kept = {lang: (np.eye(len(labels))[pred.astype(int)], gold) for lang, (pred, gold) in tested.items()}
    test = {lang: float(np.mean(pred == gold)) for lang, (pred, gold) in tested.items()}
    return (sentence_classification.prediction_alarms(task, train_language, kept) +
            every_kind.alarms("accuracy", training, validation, test))


def _tested(rng, accuracy, n=1000, constant=None):
    """(predicted, gold) for n rows, right on about `accuracy` of them (or always `constant`)."""
    gold = rng.integers(0, 3, n)
    if constant is not None:
        return np.full(n, constant), gold
    wrong = rng.random(n) > accuracy
    return np.where(wrong, (gold + 1) % 3, gold), gold


def _losses(*values):
    return [{"loss": v, "grad_norm": 1.0} for v in values]


def test_a_healthy_run_raises_no_alarm():
    rng = np.random.default_rng(0)
    tested = {"en": _tested(rng, 0.80), "de": _tested(rng, 0.70), "ar": _tested(rng, 0.60)}
    assert alarms(LABELS, "en", tested, _losses(1.1, 0.9, 0.7, 0.6), {"en": 0.81, "de": 0.72, "ar": 0.61}) == []


def test_each_alarm_names_the_language_and_the_number():
    rng = np.random.default_rng(0)
    tested = {"en": _tested(rng, 0.80), "ar": _tested(rng, 1 / 3), "zh": _tested(rng, 0.6, constant=1),
              "de": (np.zeros(500, int), np.zeros(500, int))}
    training = _losses(1.1, 1.2, 1.3) + [{"loss": 1.2, "grad_norm": float("nan")}]
    found = alarms(LABELS, "en", tested, training, {"en": 0.80, "zh": 0.60, "ar": 0.34})
    accuracy = {lang: np.mean(p == g) for lang, (p, g) in tested.items()}
    assert found == [
        f"ar at chance: {accuracy['ar']:.3f} (chance 0.333, en {accuracy['en']:.3f})",
        f"zh at chance: {accuracy['zh']:.3f} (chance 0.333, en {accuracy['en']:.3f})",
        "zh one class: neutral for 100% of 1000 test rows",
        "de one class: entailment for 100% of 500 test rows",
        "de one gold label: all 500 test rows are entailment (hidden test labels?)",
        "NaN in training: loss or gradient norm NaN from logged step 4 of 4",
        f"zh leak?: validation 0.600, test {accuracy['zh']:.3f}",
    ]
    assert alarms(LABELS, "en", {"en": _tested(rng, 0.8)}, _losses(1.0, 1.1, 1.05), {}) == [
        "loss never below its first value 1.0000 (lowest later 1.0500)"]


def test_a_weak_run_is_no_alarm_where_its_training_language_is_weak_too():
    rng = np.random.default_rng(0)
    tested = {"en": _tested(rng, 0.45, n=400), "zh": _tested(rng, 0.37, n=400)}
    assert alarms(LABELS, "en", tested, _losses(1.1, 1.0, 0.9), {}) == []


def test_a_model_that_learns_nothing_is_said_once():
    rng = np.random.default_rng(0)
    tested = {lang: _tested(rng, 0, constant=1) for lang in ("en", "de", "ar")}
    (said,) = alarms(LABELS, "en", tested, _losses(1.1, 1.0, 1.0), {})
    assert said.startswith("learns nothing: every language within noise of chance 0.333 (en 0.3")


@pytest.mark.heavy
@pytest.mark.slow
def test_runs_made_broken_raise_their_alarms_in_the_summary_the_report_and_the_tag(tmp_path):
    from xlt.config.files import SAMPLE_DIR

    data = shutil.copytree(SAMPLE_DIR, tmp_path / "data")
    rows = (data / "test.de.jsonl").read_text().splitlines()
    (data / "test.de.jsonl").write_text("\n".join(r.replace('"label": 1', '"label": 0').replace(
        '"label": 2', '"label": 0') for r in rows) + "\n")  # hidden test labels, all one value
    sweep = run_xlt("-m", "experiment=smoke", "hydra.sweeper.params.technique=fine_tune", "data=jsonl",
                    f"data.dir={data}", "tracking.aim.sync=false", f"output_dir={tmp_path}", fault="nan-lr:0:3")
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    _, (run,) = mlflow_runs(tmp_path, "smoke")
    said = run.data.tags[tags.ALARMS]
    assert "de one gold label: all 100 test rows are entailment (hidden test labels?)" in said
    assert "NaN in training: loss or gradient norm NaN from logged step" in said
    assert "Alarms (the numbers of these runs look broken, not merely weak):" in sweep.stdout
    assert f"- #0 (run {run.info.run_id}): de one gold label" in sweep.stdout
    (report,) = tmp_path.glob("multirun/*/report/report.md")
    assert "## Alarms" in report.read_text() and "NaN in training" in report.read_text()
