"""One job of a sweep: config -> data -> model -> train/eval -> tracking."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from omegaconf import DictConfig

from xlt.config import validate
from xlt.metrics import TARGET_MEAN, metric_name
from xlt.tracking import JobInfo

log = logging.getLogger(__name__)


def _hydra_job() -> tuple[JobInfo, int]:
    """This job's directory and sweep identity, and how many jobs run beside it."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    job = JobInfo(dir=Path(hc.runtime.output_dir), overrides=list(hc.overrides.task))
    if hc.mode == RunMode.MULTIRUN:
        job.sweep_id, job.job_num = Path(hc.sweep.dir).name, hc.job.num
    return job, int(hc.launcher.get("n_jobs") or 1)


def _share_cpu(parallel_jobs: int) -> None:
    """Jobs running side by side on a CPU split its cores instead of oversubscribing them."""
    import torch

    if parallel_jobs > 1 and not torch.cuda.is_available():
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // parallel_jobs))


def run_job(raw: DictConfig) -> dict:
    """Train on English, evaluate every language; return the run id and the mean target accuracy.

    A job whose earlier run was interrupted resumes that run from its checkpoint.
    """
    cfg = validate(raw)  # before anything heavy: bad input never starts a run
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from xlt.console import quiet_third_party

    quiet_third_party()
    from xlt.config import config_hash
    from xlt.data import data_pin
    from xlt.hub import model_source
    from xlt.interrupt import GracefulStop
    from xlt.runs import replace_dead_attempts, resumable_run

    job, parallel_jobs = _hydra_job()
    _share_cpu(parallel_jobs)
    stop = GracefulStop().install()
    # The sweep pinned these (xlt.hub): every job loads the same commits, and logs them.
    source, pin = model_source(cfg.model), data_pin(cfg)
    loaded = {"model": source.identity, "data": f"{pin.repo_id}@{pin.commit}" if pin else None}
    if job.sweep_id is not None:  # a launcher's retry of a job whose process died: one run, not two
        replace_dead_attempts(cfg.tracking_uri, cfg.tracking.experiment, job.sweep_id, job.job_num)
    resume = resumable_run(cfg.tracking_uri, cfg.tracking.experiment, config_hash(cfg))
    try:
        return _train_and_test(cfg, raw, job, parallel_jobs, stop, source, pin, loaded, resume)
    except KeyboardInterrupt:  # the run has ended KILLED with its checkpoint
        stop.requeue()  # preempted under submitit: requeued, and the requeued job resumes the run
        raise


def _train_and_test(cfg, raw, job, parallel_jobs, stop, source, pin, loaded, resume) -> dict:
    import mlflow
    from transformers import set_seed

    from xlt import faults
    from xlt.data import load_encoded
    from xlt.features import CachedHead, PooledClassifier, features_of
    from xlt.modeling import freeze_encoder, load_model, load_tokenizer, set_head_dropout
    from xlt.pooling import resolve_pooling
    from xlt.progress import ProgressLog
    from xlt.selection import ModelSelection, test_selected
    from xlt.tracking import MlflowMetrics, mlflow_run
    from xlt.train import build_trainer

    with mlflow_run(cfg, raw, job, loaded, resume_run_id=resume and resume[0]) as run:
        faults.at_job_start(job.job_num)
        set_seed(cfg.train.seed)
        tokenizer = load_tokenizer(cfg.model, source)
        model, newly_initialised = load_model(cfg.model, source, tokenizer)
        if newly_initialised:
            log.info("initialised from scratch (not in the checkpoint): %s", ", ".join(newly_initialised))
        if cfg.technique.name == "feature_extraction":
            freeze_encoder(model, newly_initialised)
        if cfg.train.dropout is not None:
            set_head_dropout(model, cfg.train.dropout)
        pooling, why = resolve_pooling(cfg.model, source)
        log.info("pooling: %s (%s)", pooling, why)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        mlflow.log_params({"model.trainable_params": trainable,
                           "model.total_params": sum(p.numel() for p in model.parameters()),
                           "model.pooling_resolved": pooling})

        data = load_encoded(cfg, tokenizer, pin)
        cached = cfg.technique.name == "feature_extraction" and cfg.technique.cache_features
        if cached:
            data, model = features_of(cfg, source, model, tokenizer, pooling, data), CachedHead(model)
        elif pooling != "cls":  # the heads pool with the first token themselves
            model = PooledClassifier(model, pooling)
        metrics = MlflowMetrics(cfg.languages.eval, cfg.data.train_language, stop)
        selection = ModelSelection(cfg.train.select, cfg.languages.eval, cfg.data.train_language)
        bar_position = job.job_num % parallel_jobs if parallel_jobs > 1 and job.job_num is not None else None
        progress = ProgressLog(cfg.languages.eval, cfg.data.train_language, bar_position)
        callbacks = [metrics, selection, progress, stop, faults.at_step(job.job_num)]
        if cfg.tracking.aim.callback:
            from xlt.aim_callback import aim_callback

            callbacks.append(aim_callback(cfg))
        trainer = build_trainer(cfg, model, tokenizer, data, job.dir, callbacks, cached_features=cached)
        stop.attach(trainer, resume[1] if resume else None)
        if resume:
            log.info("resuming run %s from %s", resume[0], resume[1])
            selection.resume_from(resume[1])
        trainer.train(resume_from_checkpoint=str(resume[1]) if resume else None)
        stop.raise_if_requested()  # the run ends KILLED, its checkpoint tagged for the rerun
        selected = test_selected(trainer, selection, data.test)
        mlflow.log_metric(metric_name("test", "selected_step"), selected, step=trainer.state.global_step)
        log.info("test: the weights of step %d (train.select=%s); test_last: of step %d",
                 selected, cfg.train.select, trainer.state.global_step)
        for callback in callbacks:  # Aim's callback closes its run at train end; test reopened it
            getattr(callback, "close", lambda: None)()

        score = metrics.last.get(metric_name("test", "accuracy", TARGET_MEAN), float("nan"))
        log.info("%s %s: mean target-language test accuracy %.4f",
                 cfg.model.name, cfg.technique.name, score)
        return {"run_id": run.info.run_id, "target_accuracy": score}
