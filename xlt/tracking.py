"""MLflow tracking: one run per job, with params, per-step metrics and the config snapshot."""
from __future__ import annotations

import dataclasses
import os
import traceback
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from omegaconf import DictConfig, OmegaConf
from transformers import TrainerCallback

from xlt.config import XltConfig, config_hash
from xlt.heartbeat import beating
from xlt.metrics import TARGET_MEAN, Rounds, from_trainer_logs, metric_name, parse_metric_name, target_mean
from xlt.runs import CHECKPOINT_TAG, ERROR_TAG, HASH_TAG, JOB_DIR_TAG, SWEEP_TAG
from xlt.secrets import scrub
from xlt.snapshot import environment

@dataclass
class JobInfo:
    dir: Path  # Hydra's job directory (holds .hydra/ and the job's checkpoints)
    sweep_id: Optional[str] = None
    job_num: Optional[int] = None
    overrides: List[str] = dataclasses.field(default_factory=list)  # the job's command-line overrides


# Overrides that say where a run goes or what it is called, not what it varies.
_UNNAMED = ("model", "technique", "experiment", "data", "languages", "output_dir", "data.dir", "model.path",
            "model.name")
_UNNAMED_PREFIXES = ("tracking.", "hydra.", "sweep.")


def run_name(cfg: XltConfig, overrides: List[str]) -> str:
    """`model-technique`, then the fields the job's overrides set: `tiny-fine_tune seed=2 learning_rate=0.001`,
    so that runs of a sweep over seeds or learning rates are told apart."""
    fields = []
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key not in _UNNAMED and not key.startswith(_UNNAMED_PREFIXES):
            fields.append(f"{key.rsplit('.', 1)[-1]}={value}")
    return " ".join([f"{cfg.model.name}-{cfg.technique.name}", *fields])


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


def _device() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


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
        # A server (jobs on many machines, no shared lock): the first creation wins, the rest read it.
        from mlflow.exceptions import MlflowException

        try:
            return get_or_create()
        except MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return mlflow.get_experiment_by_name(cfg.tracking.experiment).experiment_id
    # Parallel jobs must not create the SQLite schema or the experiment twice.
    cfg.cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cfg.cache_dir / "mlflow.lock")):
        return get_or_create()


@contextmanager
def mlflow_run(cfg: XltConfig, raw: DictConfig, job: JobInfo, loaded: Dict[str, Optional[str]],
               resume_run_id: Optional[str] = None) -> Iterator[object]:
    """An MLflow run that always ends: FINISHED, FAILED (error tagged) or KILLED (signal).

    `loaded`: what the model and data resolved to (repo@commit, or a content hash), logged as
    the params `model.commit` and `data.commit` and kept in the snapshot for `xlt reproduce`.
    `resume_run_id` reopens a KILLED run so that a resumed job continues its history.
    """
    import mlflow
    import yaml

    mlflow.set_tracking_uri(cfg.tracking_uri)
    env = environment(cfg, loaded)
    tags = {"xlt.model": cfg.model.name, "xlt.technique": cfg.technique.name, HASH_TAG: config_hash(cfg),
            JOB_DIR_TAG: str(job.dir), **cfg.tracking.tags}
    if env["git_commit"] != "unknown":  # outside a git checkout there is nothing to tag
        tags.update({"xlt.git_commit": env["git_commit"], "xlt.git_dirty": env["git_dirty"]})
    if job.sweep_id is not None:
        tags.update({SWEEP_TAG: job.sweep_id, "xlt.job_num": str(job.job_num)})
    if os.environ.get("XLT_REPRODUCED_FROM"):  # set by `xlt reproduce`
        tags["xlt.reproduced_from"] = os.environ["XLT_REPRODUCED_FROM"]
    tags["xlt.device"] = _device()
    if "CUDA_VISIBLE_DEVICES" in os.environ:  # the GPU the launcher gave this job
        tags["xlt.cuda_visible_devices"] = os.environ["CUDA_VISIBLE_DEVICES"]
    tags = {key: scrub(str(value)) for key, value in tags.items()}
    if resume_run_id:
        run = mlflow.start_run(run_id=resume_run_id)
        mlflow.set_tags(tags)
        mlflow.delete_tag(CHECKPOINT_TAG)
    else:
        run = mlflow.start_run(experiment_id=_experiment_id(cfg), tags=tags,
                               run_name=scrub(run_name(cfg, job.overrides)))
    try:
        job_cfg = OmegaConf.to_container(raw, resolve=True)
        job_cfg.pop("hydra", None)
        if not resume_run_id:  # a resumed run already has them
            # From the typed config, so that a value logs the same however it was written.
            mlflow.log_params({k: scrub(v) for k, v in {
                "model": cfg.model.name, "technique": cfg.technique.name,
                "languages": ",".join(cfg.languages.eval), **flatten(dataclasses.asdict(cfg)),
                **{f"{part}.commit": what for part, what in loaded.items() if what}}.items()})
        mlflow.log_text(scrub(OmegaConf.to_yaml(job_cfg)), "config/resolved.yaml")
        env_yaml = yaml.safe_dump(env, sort_keys=False)
        (job.dir / "environment.yaml").write_text(env_yaml)
        mlflow.log_text(env_yaml, "config/environment.yaml")
        for path in sorted((job.dir / ".hydra").glob("*.yaml")):
            mlflow.log_text(scrub(path.read_text()), f"hydra/{path.name}")
        # A sweep's job tells the sweep that it is alive (xlt/heartbeat.py): launchers can lose track of it.
        with beating(cfg.tracking_uri, run.info.run_id) if job.sweep_id is not None else nullcontext():
            yield run
    except KeyboardInterrupt as e:
        checkpoint = getattr(e, "checkpoint", None)
        if checkpoint:
            mlflow.set_tag(CHECKPOINT_TAG, str(checkpoint))
        mlflow.end_run("KILLED")
        raise
    except BaseException as e:
        mlflow.set_tag(ERROR_TAG, scrub(f"{type(e).__name__}: {e}")[:5000])
        mlflow.log_text(scrub(traceback.format_exc()), "error/traceback.txt")
        mlflow.end_run("FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")


class MlflowMetrics(TrainerCallback):
    """Log every Trainer record under xlt's metric names, plus each round's target mean."""

    def __init__(self, languages: List[str], train_language: str, stop=None):
        self.stop = stop  # a GracefulStop: an interrupted call's end-of-training summary is not logged
        self.rounds = Rounds(languages)
        self.train_language = train_language
        self.seconds: Dict[str, float] = defaultdict(float)  # split -> this round's evaluation time
        self.last: Dict[str, float] = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if self.stop is not None and self.stop.requested and "train_runtime" in logs:
            return  # the resumed run logs the summary when training really ends
        import mlflow

        metrics = from_trainer_logs(logs)
        for name in [n for n in metrics if n.endswith("/runtime") and parse_metric_name(n).lang]:
            self.seconds[parse_metric_name(name).split] += metrics.pop(name)  # one figure per round
        for split, accuracy in self.rounds.add(metrics).items():
            mean = target_mean(accuracy, self.train_language)
            if mean is not None:
                metrics[metric_name(split, "accuracy", TARGET_MEAN)] = mean
            if split in self.seconds:
                metrics[metric_name(split, "runtime")] = self.seconds.pop(split)
        if metrics:
            mlflow.log_metrics(metrics, step=state.global_step)
            self.last.update(metrics)
