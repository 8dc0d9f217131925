"""The MLflow run of one job: named, tagged, with params and the config snapshot, always ended."""
from __future__ import annotations

import dataclasses
import os
import traceback
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from omegaconf import DictConfig, OmegaConf

from xlt.config import XltConfig, config_hash
from xlt.core import tags
from xlt.core.devices import device_name
from xlt.core.secrets import scrub
from xlt.tracking.environment import environment
from xlt.tracking.heartbeat import beating

REPRODUCED_FROM_ENV = "XLT_REPRODUCED_FROM"  # `xlt reproduce` names the source run here, for the new run's tag
RUN_NAME_ENV = "XLT_RUN_NAME"  # a run's name, where its starter chose one (xlt reproduce keeps the original's)


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


def _run_tags(cfg: XltConfig, job: JobInfo, env: dict) -> Dict[str, str]:
    found = {tags.MODEL: cfg.model.name, tags.TECHNIQUE: cfg.technique.name, tags.HASH: config_hash(cfg),
             tags.JOB_DIR: str(job.dir), **cfg.tracking.tags}
    if env["git_commit"] != "unknown":  # outside a git checkout there is nothing to tag
        found.update({tags.GIT_COMMIT: env["git_commit"], tags.GIT_DIRTY: env["git_dirty"]})
    if job.sweep_id is not None:
        found.update({tags.SWEEP: job.sweep_id, tags.JOB_NUM: str(job.job_num)})
    if os.environ.get(REPRODUCED_FROM_ENV):  # set by `xlt reproduce`
        found[tags.REPRODUCED_FROM] = os.environ[REPRODUCED_FROM_ENV]
    found[tags.DEVICE] = device_name()
    if "CUDA_VISIBLE_DEVICES" in os.environ:  # the GPU the launcher gave this job
        found[tags.CUDA_VISIBLE_DEVICES] = os.environ["CUDA_VISIBLE_DEVICES"]
    return {key: scrub(str(value)) for key, value in found.items()}


def _log_params(cfg: XltConfig, loaded: Dict[str, Optional[str]]) -> None:
    """From the typed config, so that a value logs the same however it was written."""
    import mlflow

    mlflow.log_params({k: scrub(v) for k, v in {
        "model": cfg.model.name, "technique": cfg.technique.name,
        "languages": ",".join(cfg.languages.eval), **flatten(dataclasses.asdict(cfg)),
        **{f"{part}.commit": what for part, what in loaded.items() if what}}.items()})


def _log_snapshot(raw: DictConfig, job: JobInfo, env: dict) -> None:
    """The resolved config, the environment and Hydra's saved configs, as artifacts."""
    import mlflow
    import yaml

    job_cfg = OmegaConf.to_container(raw, resolve=True)
    job_cfg.pop("hydra", None)
    mlflow.log_text(scrub(OmegaConf.to_yaml(job_cfg)), "config/resolved.yaml")
    env_yaml = yaml.safe_dump(env, sort_keys=False)
    (job.dir / "environment.yaml").write_text(env_yaml)
    mlflow.log_text(env_yaml, "config/environment.yaml")
    for path in sorted((job.dir / ".hydra").glob("*.yaml")):
        mlflow.log_text(scrub(path.read_text()), f"hydra/{path.name}")


def _start(cfg: XltConfig, job: JobInfo, run_tags: Dict[str, str], resume_run_id: Optional[str]):
    import mlflow

    if resume_run_id:
        run = mlflow.start_run(run_id=resume_run_id)
        mlflow.set_tags(run_tags)
        mlflow.delete_tag(tags.CHECKPOINT)
        return run
    name = os.environ.get(RUN_NAME_ENV) or run_name(cfg, job.overrides)
    return mlflow.start_run(experiment_id=_experiment_id(cfg), tags=run_tags, run_name=scrub(name))


@contextmanager
def mlflow_run(cfg: XltConfig, raw: DictConfig, job: JobInfo, loaded: Dict[str, Optional[str]],
               resume_run_id: Optional[str] = None) -> Iterator[object]:
    """An MLflow run that always ends: FINISHED, FAILED (error tagged) or KILLED (signal).

    `loaded`: what the model and data resolved to (repo@commit, or a content hash), logged as
    the params `model.commit` and `data.commit` and kept in the snapshot for `xlt reproduce`.
    `resume_run_id` reopens a KILLED run so that a resumed job continues its history.
    """
    import mlflow

    mlflow.set_tracking_uri(cfg.tracking_uri)
    env = environment(cfg, loaded)
    run = _start(cfg, job, _run_tags(cfg, job, env), resume_run_id)
    try:
        if not resume_run_id:  # a resumed run already has them
            _log_params(cfg, loaded)
        _log_snapshot(raw, job, env)
        # A sweep's job tells the sweep that it is alive (xlt.tracking.heartbeat): launchers can lose track of it.
        with beating(cfg.tracking_uri, run.info.run_id) if job.sweep_id is not None else nullcontext():
            yield run
    except KeyboardInterrupt as e:
        checkpoint = getattr(e, "checkpoint", None)
        if checkpoint:
            mlflow.set_tag(tags.CHECKPOINT, str(checkpoint))
        mlflow.end_run("KILLED")
        raise
    except BaseException as e:
        mlflow.set_tag(tags.ERROR, scrub(f"{type(e).__name__}: {e}")[:5000])
        mlflow.log_text(scrub(traceback.format_exc()), "error/traceback.txt")
        mlflow.end_run("FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")
