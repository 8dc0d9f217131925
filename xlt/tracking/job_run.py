"""The MLflow run of one job: named, tagged, with params and the config snapshot, always ended."""
from __future__ import annotations

import dataclasses
import logging
import os
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

from omegaconf import DictConfig, OmegaConf

from xlt.config import XltConfig, job_fields
from xlt.core import tags
from xlt.core.devices import device_name
from xlt.core.secrets import scrub
from xlt.tracking.environment import environment
from xlt.tracking.experiment import experiment_id
from xlt.tracking.heartbeat import SweepWatch, beating
from xlt.tracking.lease import Held, claim
from xlt.tracking.sweep_run import sweep_run

REPRODUCED_FROM_ENV = "XLT_REPRODUCED_FROM"  # `xlt reproduce` names the source run here, for the new run's tag
log = logging.getLogger(__name__)
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


def _run_tags(cfg: XltConfig, job: JobInfo, env: dict, job_hash: str) -> Dict[str, str]:
    found = {tags.MODEL: cfg.model.name, tags.TECHNIQUE: cfg.technique.name, tags.HASH: job_hash,
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
        "languages": ",".join(cfg.languages.eval), **flatten(job_fields(cfg)),
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
    return mlflow.start_run(experiment_id=experiment_id(cfg), tags=run_tags, run_name=scrub(name))


def _sweep_watch(cfg: XltConfig, job: JobInfo, run, on_sweep_gone: Optional[Callable[[str], None]]):
    """The watch on this job's sweep (its parent run's heartbeat), where it has one; the job's run
    is nested under that parent in the MLflow UI."""
    parent = sweep_run(cfg.tracking_uri, run.info.experiment_id, job.sweep_id) if job.sweep_id else None
    if parent is None:
        return None
    import mlflow

    mlflow.set_tag(tags.PARENT, parent)
    return SweepWatch(cfg.tracking_uri, parent, on_sweep_gone) if on_sweep_gone else None


def _step_aside(run, held: Held) -> None:
    """Another run holds the job: this one goes, leaving nothing behind (or, when another process
    resumed this very run, leaves it running as that process's)."""
    import mlflow

    log.info("not running this job: %s", held)
    if held.run_id == run.info.run_id:
        mlflow.end_run("RUNNING")
        return
    mlflow.end_run("KILLED")
    mlflow.MlflowClient().delete_run(run.info.run_id)


@contextmanager
def mlflow_run(cfg: XltConfig, raw: DictConfig, job: JobInfo, loaded: Dict[str, Optional[str]], job_hash: str,
               resume_run_id: Optional[str] = None,
               on_sweep_gone: Optional[Callable[[str], None]] = None) -> Iterator[object]:
    """An MLflow run that always ends: FINISHED, FAILED (error tagged) or KILLED (signal).

    `loaded`: what the model and data resolved to (repo@commit, or a content hash), logged as
    the params `model.commit` and `data.commit` and kept in the snapshot for `xlt reproduce`.
    `job_hash`: the job's identity (xlt.data.identity.job_hash): the run claims it
    (xlt.tracking.lease) and raises Held where another run holds it.
    `resume_run_id` reopens a KILLED run so that a resumed job continues its history.
    `on_sweep_gone(reason)` is called once if the job's sweep dies while the job runs.
    """
    import mlflow

    mlflow.set_tracking_uri(cfg.tracking_uri)
    env = environment(cfg, loaded)
    run = _start(cfg, job, _run_tags(cfg, job, env, job_hash), resume_run_id)
    try:
        # The heartbeat tells sweeps and readers that this run's process lives (xlt.tracking.heartbeat).
        with beating(cfg.tracking_uri, run.info.run_id, cfg.tracking.heartbeat_s,
                     _sweep_watch(cfg, job, run, on_sweep_gone)):
            # A single run trains whatever ran before (as it always has); a sweep's job skips a finished one.
            claim(cfg.tracking_uri, run, job_hash, resumed=bool(resume_run_id),
                  finished_holds=cfg.sweep.skip_finished and job.sweep_id is not None)
            if not resume_run_id:  # a resumed run already has them
                _log_params(cfg, loaded)
            _log_snapshot(raw, job, env)
            yield run
    except Held as held:
        _step_aside(run, held)
        raise
    except KeyboardInterrupt as e:
        checkpoint = getattr(e, "checkpoint", None)
        if checkpoint:
            mlflow.set_tag(tags.CHECKPOINT, str(checkpoint))
        if getattr(e, "reason", None):
            mlflow.set_tag(tags.ERROR, scrub(e.reason))
        mlflow.end_run("KILLED")
        raise
    except BaseException as e:
        mlflow.set_tag(tags.ERROR, scrub(f"{type(e).__name__}: {e}")[:5000])
        mlflow.log_text(scrub(traceback.format_exc()), "error/traceback.txt")
        mlflow.end_run("FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")
