"""One job: config -> model -> data -> trainer -> train -> test, tracked in one MLflow run.

Each step is a function of its own, as in the transformers example scripts; `JobContext`
carries what the steps share. The job asks its technique (xlt.techniques) what trains and
whether encoder features may be cached, and its task's kind (xlt.tasks) the head, the metrics,
the predictions and the alarms: it never tests a technique's, a task's or a kind's name.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Optional, Tuple

from omegaconf import DictConfig

from xlt.config import XltConfig
from xlt.core import tags
from xlt.core.console import quiet_third_party
from xlt.core.metrics import SELECTED_STEP, metric_name, target_metric
from xlt.data.hub import ModelSource, Pin, model_source
from xlt.data.identity import inputs_identity, job_hash
from xlt.data.splits import EncodedData, data_pin, load_encoded
from xlt.model.features import features_of
from xlt.model.freezing import count_parameters
from xlt.model.heads import CachedHead, PooledClassifier
from xlt.model.loading import set_head_dropout
from xlt.model.pooling import resolve_pooling
from xlt.protocols import eval_languages, selection, selection_languages, validate_job, validation_languages
from xlt.tasks import metric_of, task_kind
from xlt.techniques import load_technique, prepared_classifier
from xlt.tracking.job_run import JobInfo, mlflow_run
from xlt.tracking.lease import Held
from xlt.tracking.predictions import ARTIFACT_DIR, save_predictions
from xlt.tracking.store import CHECKPOINT_OWNER, TRAINED_MARKER, replace_dead_attempts, resumable_run
from xlt.train.alarms import alarms
from xlt.train.interrupt import GracefulStop
from xlt.train.metrics_log import MlflowMetrics
from xlt.train.progress import ProgressLog
from xlt.train.saved import save_selected
from xlt.train.selection import ModelSelection, test_selected
from xlt.train.trainer import build_trainer, schedule

log = logging.getLogger(__name__)


@dataclass
class JobContext:
    """What every step of a job shares, known before its run starts."""
    cfg: XltConfig
    raw: DictConfig  # as Hydra composed it: the snapshot logged with the run
    info: JobInfo  # directory, sweep and job number, overrides
    parallel_jobs: int  # jobs running beside this one: they share the CPU and the console
    stop: GracefulStop
    technique: ModuleType  # xlt.techniques: what trains, what may be cached
    kind: ModuleType  # xlt.tasks: the head, metrics, predictions and alarms of the task's kind
    source: ModelSource  # the weights, pinned once per sweep
    pin: Optional[Pin]  # the hub dataset, pinned once per sweep (None for local data)
    local: Dict[str, str]  # part -> content hash of the local files it reads (xlt.data.identity)
    hash: str  # the job's identity in the store: config and local files
    resume: Optional[Tuple[str, Path]]  # (run id, checkpoint) of the KILLED run this job continues

    @property
    def loaded(self) -> Dict[str, Optional[str]]:
        """What the model and data resolved to, logged with the run (`model.commit`, `data.commit`)."""
        return {"model": self.source.identity,
                "data": f"{self.pin.repo_id}@{self.pin.commit}" if self.pin else self.local.get("data")}

    @property
    def caches_features(self) -> bool:
        return bool(self.technique.caches_features(self.cfg.technique)) and self.kind.POOLED

    @property
    def metric(self) -> str:
        return metric_of(self.cfg.task)


def train_and_test(raw: DictConfig) -> dict:
    """Train, evaluate every language, test the selected weights; return the run id and the mean
    target-language test value of the task's metric. A job whose earlier run was interrupted resumes that run."""
    cfg = validate_job(raw)  # before anything heavy: bad input never starts a run
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    quiet_third_party()
    job = _context(cfg, raw)
    try:
        return _run(job)
    except Held as held:  # another run has it: this job is skipped, as a finished one is
        return {"run_id": held.run_id, "skipped": str(held)}
    except KeyboardInterrupt:  # the run has ended KILLED with its checkpoint
        job.stop.requeue()  # preempted under submitit: requeued, and the requeued job resumes the run
        raise


def _context(cfg: XltConfig, raw: DictConfig) -> JobContext:
    info, parallel_jobs = _hydra_job()
    _share_cpu(parallel_jobs)
    stop = GracefulStop().install()
    # The sweep pinned these (xlt.data.hub): every job loads the same commits, and logs them.
    source, pin = model_source(cfg.model, cfg.cache_dir), data_pin(cfg)
    local = inputs_identity(cfg)
    identity = job_hash(cfg, local)
    if info.sweep_id is not None:  # a launcher's retry of a job whose process died: one run, not two
        replace_dead_attempts(cfg.tracking_uri, cfg.tracking.experiment, info.sweep_id, info.job_num)
    resume = resumable_run(cfg.tracking_uri, cfg.tracking.experiment, identity)
    return JobContext(cfg, raw, info, parallel_jobs, stop, load_technique(cfg.technique), task_kind(cfg.task), source,
                      pin, local, identity, resume)


def _hydra_job() -> Tuple[JobInfo, int]:
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


def _run(job: JobContext) -> dict:
    import mlflow
    from transformers import set_seed

    cfg = job.cfg
    with mlflow_run(cfg, job.raw, job.info, job.loaded, job.hash, resume_run_id=job.resume and job.resume[0],
                    on_sweep_gone=job.stop.request) as run:
        set_seed(cfg.train.seed)
        mlflow.set_tag(tags.METRIC, job.metric)
        load = _log_conditions(job)
        model, tokenizer, pooling = build_model(job)
        data, reader = prepare_data(job, model, tokenizer, pooling)
        trainer = build_job_trainer(job, reader, tokenizer, data)
        train(job, trainer)
        trained = keep_trained(job, trainer)
        _log_conditions(job, load)
        selected, found = test(job, trainer, data)
        if cfg.train.save == "selected":
            save_selected(job, model, tokenizer, pooling, selected)
        forget_trained(trained)
        score = _callback(trainer, MlflowMetrics).last.get(target_metric(job.metric), float("nan"))
        log.info("%s %s: mean target-language test %s %.4f (run %s)", cfg.model.name, cfg.technique.name,
                 job.metric, score, run.info.run_id)
        return {"run_id": run.info.run_id, "target_score": score, "metric": job.metric, "alarms": found}


def _log_conditions(job: JobContext, earlier_load: float = 0.0) -> float:
    """What else ran beside the job (host, cores, jobs at a time, the machine's load): a duration
    means something only beside others measured alone on like hardware. Returns the load logged."""
    import socket

    import mlflow

    load = max(earlier_load, os.getloadavg()[0])
    mlflow.set_tags({tags.HOST: socket.gethostname(), tags.CPUS: os.cpu_count() or 1,
                     tags.PARALLEL_JOBS: job.parallel_jobs, tags.LOAD: f"{load:.2f}"})
    return load


def build_model(job: JobContext):
    """The tokenizer and the classifier, with the technique's choice of what trains."""
    import mlflow

    cfg = job.cfg
    tokenizer, model, newly_initialised = prepared_classifier(cfg.model, job.source, cfg.task, cfg.technique)
    if newly_initialised:
        log.info("initialised from scratch (not in the checkpoint): %s", ", ".join(newly_initialised))
    if cfg.train.dropout is not None:
        set_head_dropout(model, cfg.train.dropout)
    pooling, why = resolve_pooling(cfg.model, job.source) if job.kind.POOLED else ("none", "a head per word")
    log.info("pooling: %s (%s)", pooling, why)
    params = count_parameters(model)
    mlflow.log_params({"model.trainable_params": params["trainable"], "model.total_params": params["total"],
                       "model.pooling_resolved": pooling})
    return model, tokenizer, pooling


def prepare_data(job: JobContext, model, tokenizer, pooling: str):
    """The tokenized splits, as cached encoder features where the technique allows; and the
    model that reads them."""
    data = load_encoded(job.cfg, tokenizer, job.pin)
    _log_rows(job, data)
    if job.caches_features:
        return features_of(job.cfg, job.source, model, tokenizer, pooling, data), CachedHead(model)
    if job.technique.caches_features(job.cfg.technique):
        log.info("features not cached: task=%s's head reads every token; the frozen encoder runs at every step",
                 job.cfg.task.name)
    if job.kind.POOLED and pooling != "cls":  # the heads pool with the first token themselves
        return data, PooledClassifier(model, pooling)
    return data, model


def _rows(ds) -> int:
    """A language's rows in a split, each counted once however many pieces a long one was split into."""
    return len(set(ds.with_format(None)["row"]))


def _log_rows(job: JobContext, data: EncodedData) -> None:
    """How many rows the job trains and evaluates on: metrics `train/rows`, `<split>/<lang>/rows`
    (`train/<lang>/rows` too; logged once: a resumed run has them)."""
    import mlflow

    train = data.train.with_format(None)  # rows of several languages: a row is (language, row)
    per_lang = Counter(lang for lang, _ in set(zip(train["lang"], train["row"])))
    rows = {metric_name("train", "rows"): sum(per_lang.values()),
            **{metric_name("train", "rows", lang): n for lang, n in per_lang.items()}}
    for split, by_lang in (("validation", data.validation), ("test", data.test)):
        rows.update({metric_name(split, "rows", lang): _rows(ds) for lang, ds in by_lang.items()})
    if job.resume is None:
        mlflow.log_metrics(rows, step=0)
    sizes = {split: sorted({rows[metric_name(split, "rows", lang)] for lang in by_lang}) for split, by_lang in
             (("validation", data.validation), ("test", data.test))}
    trained = ", ".join(f"{lang} {n}" for lang, n in per_lang.items()) if len(per_lang) > 1 else next(iter(per_lang))
    log.info("rows: %d to train (%s); per language %s validation, %s test", sum(per_lang.values()), trained,
             "-".join(map(str, sizes["validation"])), "-".join(map(str, sizes["test"])))
    _log_pieces(job, data, rows)


def _log_pieces(job: JobContext, data: EncodedData, rows: dict) -> None:
    """Rows longer than train.max_length that the task's kind split into pieces (none are cut or
    dropped): metric `<split>/<lang>/split_rows`, and a line saying how many."""
    import mlflow

    split = {}
    for name, by_lang in (("train", {None: data.train}), ("validation", data.validation), ("test", data.test)):
        for lang, ds in by_lang.items():
            extra = len(ds) - rows[metric_name(name, "rows", lang)]
            if extra:
                split[metric_name(name, "split_rows", lang)] = extra
    if split and job.resume is None:
        mlflow.log_metrics(split, step=0)
    if split:
        log.info("rows longer than train.max_length=%d, split into pieces that fit (extra pieces): %s",
                 job.cfg.train.max_length, ", ".join(f"{k} {v}" for k, v in split.items()))


def build_job_trainer(job: JobContext, model, tokenizer, data: EncodedData):
    """The Trainer with xlt's callbacks: metrics, selection, progress, stop, and Aim's own if asked."""
    cfg, info = job.cfg, job.info
    langs, validated, train_language = eval_languages(cfg), validation_languages(cfg), cfg.data.train_language
    side_by_side = job.parallel_jobs > 1 and info.job_num is not None
    log.info("model selection: %s", selection(cfg))
    callbacks: List = [MlflowMetrics(langs, train_language, job.stop, job.kind.METRICS, validated),
                       ModelSelection(cfg.train.select, langs, selection_languages(cfg), cfg.train.average_last,
                                      job.metric, validated),
                       ProgressLog(langs, train_language, info.job_num % job.parallel_jobs if side_by_side else None,
                                   job.metric, validated),
                       job.stop]
    if cfg.tracking.aim.callback:
        from xlt.train.aim_callback import aim_callback

        callbacks.append(aim_callback(cfg))
    trainer = build_trainer(cfg, model, tokenizer, data, info.dir, callbacks, cached_features=job.caches_features)
    job.stop.attach(trainer, job.resume[1] if job.resume else None)
    plan = schedule(cfg, len(data.train))
    log.info("%d training steps (%d rows, batch %d, epochs %g): validation every %d steps, progress every %d",
             plan.steps, len(data.train), cfg.train.batch_size, cfg.train.epochs, plan.eval_steps, plan.logging_steps)
    return trainer


def train(job: JobContext, trainer) -> None:
    """Train, from the interrupted run's checkpoint when there is one; from one kept as training
    ended (`keep_trained`), nothing is trained again: the weights, state and selection are loaded."""
    from transformers import TrainerState

    checkpoint = job.resume[1] if job.resume else None
    if checkpoint is not None:
        _callback(trainer, ModelSelection).resume_from(checkpoint)
    if checkpoint is not None and (checkpoint / TRAINED_MARKER).is_file():
        log.info("resuming run %s at testing: it had finished training (%s)", job.resume[0], checkpoint)
        trainer._load_from_checkpoint(str(checkpoint))  # Trainer's own loader: every layout it saves
        trainer.state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
        return
    if checkpoint is not None:
        log.info("resuming run %s from %s", job.resume[0], checkpoint)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    job.stop.raise_if_requested()  # the run ends KILLED, its checkpoint tagged for the rerun


def keep_trained(job: JobContext, trainer) -> Path:
    """The trained weights, Trainer's state and the selection, kept before testing and tagged on the
    run: a stop in any later phase (testing, saving, logging; SIGTERM or SIGKILL) resumes at testing."""
    import mlflow

    if job.resume and (job.resume[1] / TRAINED_MARKER).is_file():  # resumed at testing: kept already
        mlflow.set_tag(tags.CHECKPOINT, str(job.resume[1]))
        return job.resume[1]
    checkpoint = Path(trainer.args.output_dir) / f"checkpoint-{trainer.state.global_step}"
    trainer.save_model(str(checkpoint))
    trainer.state.save_to_json(str(checkpoint / "trainer_state.json"))
    _callback(trainer, ModelSelection).on_save(trainer.args, trainer.state, trainer.control)
    run_id = mlflow.active_run().info.run_id
    (checkpoint / CHECKPOINT_OWNER).write_text(run_id)
    (checkpoint / TRAINED_MARKER).write_text(run_id)  # last: a checkpoint without it is not resumed at testing
    mlflow.set_tag(tags.CHECKPOINT, str(checkpoint))
    return checkpoint


def forget_trained(checkpoint: Path) -> None:
    """The run has what it needs: its trained checkpoint goes (it can be as large as the model)."""
    import shutil

    import mlflow

    shutil.rmtree(checkpoint, ignore_errors=True)
    mlflow.delete_tag(tags.CHECKPOINT)


def test(job: JobContext, trainer, data: EncodedData) -> Tuple[int, List[str]]:
    """Test the selected weights (`test/...`) and the last ones (`test_last/...`), keep every
    test row's predictions, and raise the alarms they call for; the model keeps the selected
    weights. Returns their step and the alarms."""
    import mlflow

    selected, chosen, last = test_selected(trainer, _callback(trainer, ModelSelection), data.test)
    mlflow.log_metric(SELECTED_STEP, selected, step=trainer.state.global_step)
    rows = {lang: ds.with_format(None)["row"] for lang, ds in data.test.items()}
    saved = save_predictions(job.info.dir, job.cfg.task.labels, rows, *(
        _examples(job, outputs, data.test) for outputs in (chosen, last)), job.kind.STATISTICS)
    mlflow.log_artifact(str(saved), ARTIFACT_DIR)
    averaged = _callback(trainer, ModelSelection).averaged_steps
    tested = f"the mean of the weights of steps {', '.join(map(str, averaged))}" if averaged else \
        f"the weights of step {selected}"
    log.info("test: %s (train.select=%s); test_last: of step %d", tested, job.cfg.train.select,
             trainer.state.global_step)
    found = run_alarms(job, trainer, chosen, selected, data.test)
    for callback in trainer.callback_handler.callbacks:  # Aim's closes its run at train end; test reopened it
        getattr(callback, "close", lambda: None)()
    return selected, found


def run_alarms(job: JobContext, trainer, chosen: dict, selected: int, features: dict) -> List[str]:
    """The run's alarms (xlt.train.alarms), tagged and logged; `features`: the test splits."""
    import mlflow

    history = trainer.state.log_history
    training = [record for record in history if "loss" in record]
    evaluated = [r for r in history if r.get("step", 0) <= selected and any(k.startswith("eval_") for k in r)]
    validation, metric = {}, job.metric
    for record in evaluated:  # the last round at or before the tested step
        validation.update({lang: record[f"eval_{lang}_{metric}"] for lang in eval_languages(job.cfg)
                           if f"eval_{lang}_{metric}" in record})
    tested = {lang: (out.predictions, out.label_ids) for lang, out in chosen.items()}
    found = job.kind.prediction_alarms(job.cfg.task, job.cfg.data.train_language, tested, features)
    test = {lang: out.metrics[f"test_{lang}_{metric}"] for lang, out in chosen.items()
            if f"test_{lang}_{metric}" in out.metrics}
    found += alarms(metric, training, validation, test)
    if found:
        mlflow.set_tag(tags.ALARMS, "; ".join(found))
        for alarm in found:
            log.warning("alarm: %s", alarm)
    return found


def _examples(job: JobContext, outputs: dict, features: dict) -> dict:
    """Per language, what the predictions file keeps of each test example, and its counts (xlt.tasks)."""
    kind, task = job.kind, job.cfg.task
    return {lang: {**kind.prediction_arrays(out.predictions, out.label_ids, task, features[lang]),
                   "stats": kind.example_statistics(out.predictions, out.label_ids, task, features[lang])}
            for lang, out in outputs.items()}


def _callback(trainer, kind: type):
    """The trainer's callback of that class (xlt's own: one of each)."""
    return next(c for c in trainer.callback_handler.callbacks if isinstance(c, kind))
