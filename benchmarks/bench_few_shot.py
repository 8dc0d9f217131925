"""Few-shot transfer on a real encoder: mean target-language test accuracy at K = 0, 16, 64, 256
target rows per language, on a fixed English budget; and translate-train's mechanics and speed.

    python benchmarks/bench_few_shot.py [--shared ../shared]   # writes benchmarks/results_few_shot.json

Model: the real multilingual-e5-small in shared/models; data: real XNLI rows in shared/data, as a
local copy of facebook/xnli in its hub layout (tests/standins/dataset_repos.py: parquet files, card `configs:`).
The shared data has no target-language training rows: each language's last 990 validation rows
are its training pool (its `train` files), and the first 1,500 remain its validation split, of
which the first EVAL rows are evaluated. Every K is one `python run.py -m` sweep of
`protocol=few_shot protocol.shots=0,16,64,256`, as a user runs it.

The shared data has no translated training rows either: the translate-train sweep trains each
target language on that same pool (990 human-translated rows, not 392,702 machine-translated
ones), so its accuracy says nothing about translate-train; it measures that the sweep makes one
job per target language, what each job reads, and how long each takes.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

from sides import REPO, timed

sys.path.insert(0, str(REPO / "tests"))
from standins.dataset_repos import LANGS, dataset_mirror  # noqa: E402

POOL = 990  # each language's last validation rows: its training pool
ENGLISH_ROWS, EVAL, TEST = 1500, 300, 1000  # English training rows; validation and test rows per language
SHOTS = "0,16,64,256"
# Fine-tuning at a budget on which e5-small learns on 2 CPU cores (its defaults, batch 32 at lr 5e-5,
# stay at chance in the 47 steps of one epoch: BENCHMARKS.md, issue 24).
RECIPE = ["technique=fine_tune", "train.epochs=1", "train.batch_size=16", "train.learning_rate=1e-4",
          "train.warmup=0.1", "train.eval_steps=40"]


def sweep(model: Path, mirror: Path, overrides) -> dict:
    """One `python run.py -m` sweep; every run's per-language test accuracy, rows and time read back."""
    import mlflow

    out = Path(tempfile.mkdtemp(prefix="xlt-few-shot-"))
    wall, _ = timed([sys.executable, "run.py", "-m", "model=local", f"model.path={model}", "data=xnli",
                     f"data.hub_id={mirror}", f"data.max_eval_samples={EVAL}", f"data.max_test_samples={TEST}",
                     *RECIPE, *overrides, "tracking.experiment=few_shot", "tracking.aim.sync=false",
                     f"output_dir={out}"])
    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = [r for r in client.search_runs([client.get_experiment_by_name("few_shot").experiment_id])
            if r.data.tags.get("xlt.kind") != "sweep"]  # the jobs, not the sweep's parent run
    return {"wall_s": wall, "overrides": overrides, "runs": [{
        "status": r.info.status, "seed": int(r.data.params["train.seed"]),
        "shots": int(r.data.params["protocol.shots"]),
        "target": r.data.params.get("protocol.target"),
        "duration_s": (r.info.end_time - r.info.start_time) / 1000,
        "train_rows": {k.split("/")[1]: v for k, v in r.data.metrics.items() if k.count("/") == 2
                       and k.startswith("train/") and k.endswith("/rows")},
        "test": {k.split("/")[1]: v for k, v in r.data.metrics.items()
                 if k.startswith("test/") and k.endswith("/accuracy")},
    } for r in runs]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results_few_shot.json")
    parser.add_argument("--seeds", default="42", help="train.seed values of the few-shot sweep, e.g. 42,43")
    parser.add_argument("--only", choices=["few_shot", "translate_train"],
                        help="one of the two sweeps, its runs added to those already in --out")
    args = parser.parse_args()
    model = args.shared / "models" / "multilingual-e5-small-xnli"
    mirror = dataset_mirror(Path(tempfile.mkdtemp(prefix="xnli-mirror-")), args.shared / "data" / "xnli",
                            "xnli", LANGS, pool=POOL)
    sweeps = {"few_shot": ["protocol=few_shot", f"protocol.shots={SHOTS}", f"train.max_train_samples={ENGLISH_ROWS}",
                           f"train.seed={args.seeds}"],
              "translate_train": ["protocol=translate_train", "data.max_test_samples=300"]}
    results = json.loads(args.out.read_text()) if args.only and args.out.is_file() else {}
    results.update({"pool": POOL, "english_rows": ENGLISH_ROWS, "eval_rows": EVAL, "test_rows": TEST,
                    "recipe": RECIPE})
    for name in [args.only] if args.only else sweeps:
        measured = sweep(model, mirror, sweeps[name])
        results.setdefault(name, {"sweeps": [], "runs": []})
        results[name]["sweeps"] = results[name].get("sweeps", []) + [
            {"wall_s": measured["wall_s"], "overrides": measured["overrides"]}]
        results[name]["runs"] += measured["runs"]
    args.out.write_text(json.dumps(results, indent=1))
    for r in sorted(results.get("few_shot", {}).get("runs", []), key=lambda r: (r["shots"], r["seed"])):
        print(r["shots"], r["seed"], {k: round(v, 3) for k, v in sorted(r["test"].items())}, f"{r['duration_s']:.0f} s")
    for r in results.get("translate_train", {}).get("runs", []):
        print(r["target"], r["train_rows"], {k: round(v, 3) for k, v in r["test"].items()}, f"{r['duration_s']:.0f} s")


if __name__ == "__main__":
    main()
