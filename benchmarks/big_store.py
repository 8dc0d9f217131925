"""MLflow stores of many xlt jobs, cloned from one real job, for the 1,000-job benchmark.

The template is a job run by xlt itself (the smoke sweep's fine-tune job: 70 params, 24 tags,
65 metrics with 164 points over 6 languages, its config and Hydra files and `predictions/test.npz`).
Each clone is that run under another job's identity: model (4) x technique (4) x learning rate
(2) x seed, its own config hash, and scores of its own, drawn per run and language, that its
accuracy histories, test metrics and per-example predictions agree on. Written through MLflow's
client as a sweep writes them (one create, one batch, one end per run); artifacts copied into
each run's artifact directory.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Dict, List

import numpy as np

MODELS = ["mbert-cased", "xlmr-base", "distilmbert", "mbert-uncased"]
TECHNIQUES = ["fine_tune", "lora", "bitfit", "feature_extraction"]
RATES = ["2e-05", "5e-05"]
BATCH = 1000  # MLflow's log_batch takes at most 1,000 entities


def read_template(uri: str) -> dict:
    """The first finished fine-tune job of a store: params, tags, histories, artifact files."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              "tags.`xlt.technique` = 'fine_tune' and attributes.status = 'FINISHED'")
    run = runs[0]
    histories = {key: client.get_metric_history(run.info.run_id, key) for key in run.data.metrics}
    return {"params": run.data.params, "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
            "histories": histories, "artifacts": Path(mlflow.artifacts.download_artifacts(run.info.artifact_uri)),
            "start": run.info.start_time, "duration": run.info.end_time - run.info.start_time}


def _job(i: int) -> dict:
    model, technique = MODELS[i % 4], TECHNIQUES[i // 4 % 4]
    rate, seed = RATES[i // 16 % 2], 42 + i // 32
    return {"model": model, "technique": technique, "train.learning_rate": rate, "train.seed": str(seed)}


def _scores(rng: np.random.Generator, i: int, langs: List[str]) -> Dict[str, float]:
    """A run's test accuracy per language: model and technique effects, a transfer gap, noise."""
    job = _job(i)
    base = 0.55 + 0.05 * MODELS.index(job["model"]) + 0.03 * TECHNIQUES.index(job["technique"])
    return {lang: float(np.clip(base - (0 if k == 0 else 0.05 + 0.01 * k) + rng.normal(0, 0.01), 0.34, 0.95))
            for k, lang in enumerate(langs)}


def _histories(template: dict, scores: Dict[str, float], rng: np.random.Generator, shift_ms: int):
    """The template's points, accuracies moved to the run's scores (a rising curve), losses jittered."""
    from mlflow.entities import Metric

    out = []
    for key, points in template["histories"].items():
        parts = key.split("/")
        lang = parts[1] if len(parts) == 3 else None
        for n, m in enumerate(points):
            value = m.value
            if parts[-1] == "accuracy" and lang in scores:
                value = scores[lang] * (0.8 + 0.2 * (n + 1) / len(points))
            elif parts[-1] == "accuracy" and lang == "target_mean":
                value = float(np.mean([v for k, v in scores.items() if k != "en"]))
            elif parts[-1] == "loss":
                value = m.value * (1 + rng.normal(0, 0.02))
            out.append(Metric(key, value, m.timestamp + shift_ms, m.step))
    return out


def _predictions(source: Path, target: Path, scores: Dict[str, float], rng: np.random.Generator) -> None:
    """The template's predictions file, each example right with its language's score."""
    with np.load(source) as saved:
        arrays = dict(saved)
    p = np.array([scores[str(lang)] for lang in arrays["lang"]])
    for weights in ("selected", "last"):
        right = rng.random(len(p)) < p
        pred = np.where(right, arrays["gold"], (arrays["gold"] + 1) % len(arrays["labels"])).astype(np.int16)
        arrays[f"{weights}_pred"] = pred
        arrays[f"{weights}_stats"] = np.stack([right, np.ones_like(right)], axis=1).astype(np.float32)
    np.savez_compressed(target, **arrays)


def build(uri: str, artifacts: Path, n_jobs: int, template: dict, seed: int = 0) -> List[str]:
    """A store at `uri` (artifacts under `artifacts`) with one sweep of `n_jobs` finished jobs in the
    template's shape; their run ids."""
    import mlflow
    from mlflow.entities import Param

    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("big", artifact_location=artifacts.resolve().as_uri())
    rng = np.random.default_rng(seed)
    sweep = "2026-12-05_big"
    parent = client.create_run(experiment, run_name=f"sweep {sweep}", tags={"xlt.kind": "sweep", "xlt.sweep_id": sweep})
    langs = template["params"]["languages"].split(",")
    run_ids = []
    for i in range(n_jobs):
        job = _job(i)
        params = {**template["params"], **job, "model.name": job["model"], "technique.name": job["technique"]}
        digest = hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()[:16]
        tags = {**{k: v for k, v in template["tags"].items() if k != "xlt.alarms"}, "xlt.model": job["model"],
                "xlt.technique": job["technique"], "xlt.config_hash": digest, "xlt.sweep_id": sweep,
                "xlt.job_num": str(i), "mlflow.parentRunId": parent.info.run_id}
        start = template["start"] + i * template["duration"]
        run = client.create_run(experiment, start_time=start, run_name=f"{job['model']}-{job['technique']}", tags=tags)
        scores = _scores(rng, i, langs)
        entities = [Param(k, v) for k, v in params.items()]
        metrics = _histories(template, scores, rng, start - template["start"])
        for chunk in range(0, len(entities), 100):  # and at most 100 params
            client.log_batch(run.info.run_id, params=entities[chunk:chunk + 100])
        for chunk in range(0, len(metrics), BATCH):
            client.log_batch(run.info.run_id, metrics=metrics[chunk:chunk + BATCH])
        _copy_artifacts(template["artifacts"], Path(run.info.artifact_uri.removeprefix("file://")), scores, rng)
        client.set_terminated(run.info.run_id, "FINISHED", end_time=start + template["duration"])
        run_ids.append(run.info.run_id)
    client.set_terminated(parent.info.run_id, "FINISHED")
    return run_ids


def _copy_artifacts(source: Path, target: Path, scores: Dict[str, float], rng: np.random.Generator) -> None:
    shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.npz"))
    _predictions(source / "predictions" / "test.npz", target / "predictions" / "test.npz", scores, rng)
