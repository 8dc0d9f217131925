"""Are the defaults good baselines? Accuracy of xlt's default techniques on a real encoder.

    python benchmarks/bench_protocol.py [--shared ../shared] [--out FILE]

Model: the real multilingual-e5-small in shared/models; data: real XNLI in shared/data, with
held-out rows (train on English train, select on validation, report test). Every xlt run
uses the technique's defaults; only the data sizes are set, plus `train.epochs=1` for
fine-tuning (the budget the acceptance names). The seed's way (benchmarks/seed_way.py:
lr 5e-5, 3 epochs, batch 8, padding 512) trains feature extraction on the same rows as
xlt's default; it re-runs the encoder at every step, so that comparison uses fewer rows.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

from sides import REPO, seed_way, timed

LANGS = ["en", "de", "fr", "es", "ar", "zh"]
EVAL, TEST = 500, 1000  # held-out rows per language: validation (selection), test (reported)
# The seed validates only at its end here (its selection is the last step): few rows suffice.
SEED_BUDGET = dict(train=1000, eval=20, test=300, epochs=3, batch=8, lr=5e-5, eval_steps=100000)
CASES = {
    "feature_extraction (default), 9000 rows": ["technique=feature_extraction"],
    "fine_tune (default), 9000 rows, 1 epoch": ["technique=fine_tune", "train.epochs=1"],
    "feature_extraction (default), 1000 rows": [
        "technique=feature_extraction", f"train.max_train_samples={SEED_BUDGET['train']}",
        f"data.max_test_samples={SEED_BUDGET['test']}"],
    # At the default eval_steps=500 the cases above evaluate once or twice, so en_dev can only
    # pick the last step; evaluating every epoch shows the selection at work.
    "feature_extraction (default), 9000 rows, eval every epoch": [
        "technique=feature_extraction", "train.eval_steps=282"],  # after PINNED: wins
}
SEED = "seed's way feature_extraction, 1000 rows"
# The intervals these figures were measured with (the defaults then; now they scale with the run).
PINNED = ["train.eval_steps=500", "train.logging_steps=50"]


def xlt_default(model: Path, data: Path, overrides) -> dict:
    """`python run.py` with the technique's defaults; per-language test accuracies read back."""
    import mlflow

    out = Path(tempfile.mkdtemp(prefix="xlt-protocol-"))
    wall, _ = timed([sys.executable, "run.py", "model=local", f"model.path={model}", "data=jsonl",
                     f"data.dir={data}", f"data.max_eval_samples={EVAL}", f"data.max_test_samples={TEST}",
                     *PINNED, *overrides, "tracking.experiment=protocol", "tracking.aim.sync=false",
                     f"output_dir={out}"])
    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("protocol").experiment_id])
    m, p = run.data.metrics, run.data.params
    return {"wall_s": wall, "overrides": overrides,
            "train": {k: p[f"train.{k}"] for k in ("learning_rate", "epochs", "batch_size", "select")},
            "pooling": p["model.pooling_resolved"], "selected_step": m["test/selected_step"],
            "last_step": max(s.step for s in client.get_metric_history(run.info.run_id, "train/epoch")),
            "test": {lang: m[f"test/{lang}/accuracy"] for lang in LANGS + ["target_mean"]},
            "test_last": {lang: m[f"test_last/{lang}/accuracy"] for lang in LANGS + ["target_mean"]}}


def row(name, accuracies):
    return f"| {name} | " + " | ".join(f"{100 * accuracies[k]:.1f}" for k in LANGS + ["target_mean"]) + " |"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results_protocol.json")
    p.add_argument("--case", action="append", choices=[*CASES, SEED], help="default: all; results merge into --out")
    a = p.parse_args()
    model, data = a.shared.resolve() / "models/multilingual-e5-small-xnli", a.shared.resolve() / "data/xnli"
    results = json.loads(a.out.read_text()) if a.case and a.out.is_file() else {}
    for name in a.case or [*CASES, SEED]:
        if name == SEED:
            results[name] = seed_way(model, data, "feature_extraction", SEED_BUDGET)
        else:
            results[name] = xlt_default(model, data, CASES[name])
        print(name, json.dumps(results[name]), flush=True)
        a.out.write_text(json.dumps(results, indent=1))  # a run cut off keeps what it finished
    print("\n| run | " + " | ".join(LANGS) + " | target mean |\n|---|" + "---|" * (len(LANGS) + 1))
    for name, r in results.items():
        if name == SEED:
            print(row(name, {**r["test_accuracy"], "target_mean": r["test_target_mean_accuracy"]}))
        else:
            print(row(f"{name}: step {r['selected_step']:.0f} (train.select)", r["test"]))
            print(row(f"{name}: last step {r['last_step']}", r["test_last"]))


if __name__ == "__main__":
    main()
