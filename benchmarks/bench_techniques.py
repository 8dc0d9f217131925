"""The techniques side by side on a real encoder: accuracy, training time per epoch, parameters
trained, size of the saved weights (issue 22).

    python benchmarks/bench_techniques.py [--shared ../shared] [--out FILE] [--rows N] [--case NAME ...]

Model: the real multilingual-e5-small in shared/models; data: real XNLI in shared/data, with the
held-out rows of bench_protocol.py (train on English train, select on the first 500 validation
rows per language, report the first 1,000 test rows). Each technique runs with its own defaults
(conf/technique/*.yaml); fine-tuning, LoRA and BitFit get the same budget, one epoch (LoRA also
its own default, 3 epochs), and every case saves its selected weights (`train.save=selected`),
so that their sizes compare.
`--rows` trains on fewer English rows (the learning-rate pilots of BENCHMARKS.md).
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

from sides import REPO, timed

LANGS = ["en", "de", "fr", "es", "ar", "zh"]
EVAL, TEST = 500, 1000  # held-out rows per language, as in bench_protocol.py
CASES = {
    "feature_extraction": ["technique=feature_extraction"],
    "fine_tune": ["technique=fine_tune", "train.epochs=1"],
    "lora": ["technique=lora", "train.epochs=1"],
    "bitfit": ["technique=bitfit", "train.epochs=1"],
    "lora, 3 epochs (its default)": ["technique=lora"],
}
# bench_protocol.py's intervals: one or two evaluation rounds per job, so that time goes to training.
PINNED = ["train.eval_steps=500", "train.logging_steps=50"]


def run_case(model: Path, data: Path, overrides, rows, eval_rows, test_rows) -> dict:
    """`python run.py` as a user would; what it measured, read back from its MLflow run."""
    import mlflow

    out = Path(tempfile.mkdtemp(prefix="xlt-techniques-"))
    sizes = [f"data.max_eval_samples={eval_rows}", f"data.max_test_samples={test_rows}"]
    sizes += [f"train.max_train_samples={rows}"] if rows else []
    wall, _ = timed([sys.executable, "run.py", "model=local", f"model.path={model}", "data=jsonl",
                     f"data.dir={data}", *sizes, *PINNED, *overrides, "train.save=selected",
                     "tracking.experiment=techniques", "tracking.aim.sync=false", f"output_dir={out}"])
    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("techniques").experiment_id])
    m, p = run.data.metrics, run.data.params
    validation_s = sum(x.value for x in client.get_metric_history(run.info.run_id, "validation/runtime"))
    saved = next(out.glob("runs/*/selected"))
    return {"wall_s": wall, "overrides": overrides,
            "train": {k: p[f"train.{k}"] for k in ("learning_rate", "epochs", "batch_size", "select")},
            "train_rows": m["train/rows"], "selected_step": m["test/selected_step"],
            # Trainer's train_runtime includes the evaluation rounds inside training: take them out.
            "train_s_per_epoch": (m["train/runtime"] - validation_s) / float(p["train.epochs"]),
            "trainable_params": int(p["model.trainable_params"]), "total_params": int(p["model.total_params"]),
            "saved_bytes": sum(f.stat().st_size for f in saved.iterdir()),
            "saved_files": sorted(f.name for f in saved.iterdir()),
            "test": {lang: m.get(f"test/{lang}/accuracy") for lang in LANGS + ["target_mean"]}}


def encoder_share(model: Path, technique: str) -> dict:
    """Parameters the technique trains inside the pretrained encoder, and the encoder's: the head
    aside, with what the checkpoint lacked (e5 ships no pooler: it trains as part of the head)."""
    sys.path.insert(0, str(REPO))
    from hydra import compose, initialize_config_dir

    from xlt.config import CONF_DIR, register_schema, validate
    from xlt.data.hub import model_source
    from xlt.techniques import prepared_classifier

    register_schema()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = validate(compose("config", [f"technique={technique}", "model=local", f"model.path={model}",
                                          "data=sample"]))
    _, classifier, new = prepared_classifier(cfg.model, model_source(cfg.model), cfg.task.labels, cfg.technique)
    prefix, new = classifier.base_model_prefix + ".", {n.replace(".weight", "").replace(".bias", "") for n in new}
    inside = [(n, p) for n, p in classifier.named_parameters()
              if n.startswith(prefix) and not any(n.startswith(m + ".") for m in new)]
    encoder = [p for n, p in inside if ".lora_" not in n]
    trained = [p for n, p in inside if p.requires_grad]
    return {"encoder_params": sum(p.numel() for p in encoder), "encoder_trained": sum(p.numel() for p in trained)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results_techniques.json")
    p.add_argument("--rows", type=int, help="English training rows (default: all 9,000)")
    p.add_argument("--eval-rows", type=int, default=EVAL)
    p.add_argument("--test-rows", type=int, default=TEST)
    p.add_argument("--case", action="append", help=f"{', '.join(CASES)}, or 'NAME:LABEL=OVERRIDE OVERRIDE...' "
                                                   "(default: the four; results merge into --out)")
    a = p.parse_args()
    model, data = a.shared.resolve() / "models/multilingual-e5-small-xnli", a.shared.resolve() / "data/xnli"
    results = json.loads(a.out.read_text()) if a.case and a.out.is_file() else {}
    for case in a.case or list(CASES):
        name, _, extra = case.partition("=")
        overrides = CASES.get(name) or CASES[name.split(":")[0]]  # NAME:LABEL: a variant of a case
        overrides = overrides + extra.split()
        r = run_case(model, data, overrides, a.rows, a.eval_rows, a.test_rows)
        r.update(encoder_share(model, overrides[0].split("=")[1]))  # overrides[0]: technique=NAME
        results[case] = r
        print(case, json.dumps(r), flush=True)
        a.out.write_text(json.dumps(results, indent=1))  # a run cut off keeps what it finished
    print("\n| case | " + " | ".join(LANGS) + " | target mean | s/epoch | encoder trained | saved |")
    print("|---|" + "---|" * (len(LANGS) + 4))
    for name, r in results.items():
        acc = " | ".join("-" if r["test"][k] is None else f"{100 * r['test'][k]:.1f}" for k in LANGS + ["target_mean"])
        print(f"| {name} | {acc} | {r['train_s_per_epoch']:.0f} | "
              f"{100 * r['encoder_trained'] / r['encoder_params']:.2f}% | {r['saved_bytes'] / 1e6:.2f} MB |")


if __name__ == "__main__":
    main()
