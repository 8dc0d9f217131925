"""The two sides of every speed benchmark, each run as its own process from a cold start.

`seed_way` runs benchmarks/seed_way.py (the baseline); `xlt_way` runs `run.py` as a user
would and reads the results back from the run's MLflow store.
"""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(cmd):
    """Wall time and stdout of a command run from the repository root; exits on failure."""
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if result.returncode:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{result.stderr[-3000:]}")
    return time.perf_counter() - start, result.stdout


def seed_way(model, data, technique, c):
    """The seed's Trainer at padding 512; `c` holds the case's sizes."""
    wall, out = timed([sys.executable, "benchmarks/seed_way.py", "--model", str(model), "--data", str(data),
                       "--technique", technique, "--train-samples", str(c["train"]),
                       "--eval-samples", str(c["eval"]), "--test-samples", str(c["test"]),
                       "--epochs", str(c["epochs"]), "--batch-size", str(c["batch"]), "--lr", str(c["lr"]),
                       "--eval-steps", str(c["eval_steps"])])
    result = json.loads(out.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def xlt_way(model, data, technique, c):
    """`python run.py` with the case's sizes; measures read back from its MLflow run."""
    import mlflow

    out = Path(tempfile.mkdtemp(prefix="xlt-bench-"))
    wall, _ = timed([sys.executable, "run.py", "model=local", f"model.path={model}",
                     f"technique={technique}", "data=jsonl", f"data.dir={data}",
                     f"train.max_train_samples={c['train']}", f"data.max_eval_samples={c['eval']}",
                     f"data.max_test_samples={c['test']}", f"train.epochs={c['epochs']}",
                     f"train.batch_size={c['batch']}", f"train.learning_rate={c['lr']}",
                     f"train.eval_steps={c['eval_steps']}", "tracking.experiment=bench", f"output_dir={out}"])
    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("bench").experiment_id])
    m = run.data.metrics
    return {"wall_s": wall, "train_samples_per_second": m["train/samples_per_second"],
            "train_runtime_s": m["train/runtime"],
            "test_runtime_s": m["test_last/runtime"],  # the pass every job makes (test/ may reuse it)
            "test_en_accuracy": m["test/en/accuracy"], "test_target_mean_accuracy": m["test/target_mean/accuracy"]}


def task_run(model: Path, data: Path, task: str, langs: list, recipe: list, metrics: tuple) -> dict:
    """One `python run.py model=local task=TASK data=jsonl` of a real-encoder benchmark on local files:
    its wall time, selected step and each language's test `metrics`, read back from its MLflow run."""
    import mlflow

    out = Path(tempfile.mkdtemp(prefix=f"xlt-{task}-"))
    wall, _ = timed([sys.executable, "run.py", "model=local", f"model.path={model}", f"task={task}", "data=jsonl",
                     f"data.dir={data}", f"languages.eval=[{','.join(langs)}]", *recipe,
                     "tracking.experiment=bench", "tracking.aim.sync=false", f"output_dir={out}"])
    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("bench").experiment_id])
    m = run.data.metrics
    return {"wall_s": round(wall, 1), "selected_step": m["test/selected_step"],
            **{lang: {k: round(m[f"test/{lang}/{k}"], 4) for k in metrics} for lang in langs}}
