"""MLflow tracking: one run per job, with params, per-step metrics and the config snapshot."""
from __future__ import annotations

import subprocess
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from omegaconf import DictConfig, OmegaConf
from transformers import TrainerCallback

from xlt.config import XltConfig
from xlt.metrics import TARGET_MEAN, from_trainer_logs, metric_name, parse_metric_name, target_mean

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class JobInfo:
    dir: Path  # Hydra's job directory (holds .hydra/ and the job's checkpoints)
    sweep_id: Optional[str] = None
    job_num: Optional[int] = None


def flatten(node, prefix: str = "") -> Dict[str, str]:
    """{'train': {'seed': 1}} -> {'train.seed': '1'}; lists become comma-separated."""
    if isinstance(node, dict):
        out: Dict[str, str] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(node, list):
        node = ",".join(map(str, node))
    return {prefix[:-1]: str(node)}


def git_state() -> Dict[str, str]:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        return {"xlt.git_commit": git("rev-parse", "HEAD"),
                "xlt.git_dirty": str(bool(git("status", "--porcelain", "--untracked-files=no")))}
    except (OSError, subprocess.SubprocessError):
        return {}


def _experiment_id(cfg: XltConfig) -> str:
    """Get or create the experiment; artifacts of a local store live under output_dir."""
    import mlflow
    from filelock import FileLock

    def get_or_create() -> str:
        found = mlflow.get_experiment_by_name(cfg.tracking.experiment)
        if found is not None:
            return found.experiment_id
        location = None
        if cfg.tracking_uri.startswith("sqlite:") and not cfg.tracking.uri:
            location = (Path(cfg.output_dir).resolve() / "mlartifacts").as_uri()
        return mlflow.create_experiment(cfg.tracking.experiment, artifact_location=location)

    if not cfg.tracking_uri.startswith("sqlite:"):
        return get_or_create()
    # Parallel jobs must not create the SQLite schema or the experiment twice.
    cfg.cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cfg.cache_dir / "mlflow.lock")):
        return get_or_create()


@contextmanager
def mlflow_run(cfg: XltConfig, raw: DictConfig, job: JobInfo) -> Iterator[object]:
    """An MLflow run that always ends: FINISHED, FAILED (error tagged) or KILLED (Ctrl-C)."""
    import mlflow

    mlflow.set_tracking_uri(cfg.tracking_uri)
    tags = {"xlt.model": cfg.model.name, "xlt.technique": cfg.technique.name, **git_state()}
    if job.sweep_id is not None:
        tags.update({"xlt.sweep_id": job.sweep_id, "xlt.job_num": str(job.job_num)})
    run = mlflow.start_run(experiment_id=_experiment_id(cfg), tags=tags,
                           run_name=f"{cfg.model.name}-{cfg.technique.name}")
    try:
        job_cfg = OmegaConf.to_container(raw, resolve=True)
        job_cfg.pop("hydra", None)
        mlflow.log_params({"model": cfg.model.name, "technique": cfg.technique.name,
                           "languages": ",".join(cfg.languages.eval), **flatten(job_cfg)})
        mlflow.log_text(OmegaConf.to_yaml(job_cfg), "config/resolved.yaml")
        if (job.dir / ".hydra").is_dir():
            mlflow.log_artifacts(str(job.dir / ".hydra"), "hydra")
        yield run
    except KeyboardInterrupt:
        mlflow.end_run("KILLED")
        raise
    except BaseException as e:
        mlflow.set_tag("xlt.error", f"{type(e).__name__}: {e}"[:5000])
        mlflow.end_run("FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")


class MlflowMetrics(TrainerCallback):
    """Log every Trainer record under xlt's metric names, plus each round's target mean."""

    def __init__(self, languages: List[str], train_language: str):
        self.languages = set(languages)
        self.train_language = train_language
        self.accuracy: Dict[str, Dict[str, float]] = defaultdict(dict)  # split -> lang -> acc
        self.last: Dict[str, float] = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        import mlflow

        metrics = from_trainer_logs(logs)
        for name, value in list(metrics.items()):
            key = parse_metric_name(name)
            if key.lang and key.metric == "accuracy":
                round_ = self.accuracy[key.split]
                round_[key.lang] = value
                # Trainer evaluates one language at a time: the mean waits for the last one.
                if set(round_) >= self.languages:
                    mean = target_mean(round_, self.train_language)
                    if mean is not None:
                        metrics[metric_name(key.split, "accuracy", TARGET_MEAN)] = mean
                    round_.clear()
        if metrics:
            mlflow.log_metrics(metrics, step=state.global_step)
            self.last.update(metrics)
