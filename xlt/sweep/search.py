"""Hyperparameter search: an Optuna study run by xlt's sweeper (`hparams_search=optuna`).

Hydra's own Optuna plugin (hydra-optuna-sweeper 1.3.0) requires optuna<3, whose storage fails
on SQLAlchemy 2, so xlt asks current Optuna for trials itself, with the plugin's override
syntax. Every trial is a job of one sweep (finished ones skipped, failures isolated, summary,
report, Aim sync) under any launcher, and its score is read from its MLflow run, so a launcher
that drops return values (submitit, Ray) loses nothing. The study lives in SQLite under
`output_dir`: the same command continues it until `n_trials` trials have finished.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from hydra.core.utils import JobReturn
from omegaconf import OmegaConf, open_dict

from xlt.config import config_hash
from xlt.core.errors import ConfigError, first_line
from xlt.core.metrics import parse_metric_name
from xlt.sweep.outcome import FAILED, FINISHED, KILLED, NOT_STARTED, SKIPPED, Outcome
from xlt.sweep.plugins import OptunaSweeperConf
from xlt.sweep.sweeper import Sweeper

log = logging.getLogger(__name__)
SAMPLERS = ("tpe", "random")


def check_settings(sweeper) -> None:
    """The sweeper's own fields, before any job: one line naming the field."""
    def field(name: str) -> str:
        return f"hydra.sweeper.{name}"

    for name in ("n_trials", "n_jobs"):
        if int(sweeper[name]) < 1:
            raise ConfigError(field(name), f"must be at least 1, got {sweeper[name]}")
    if sweeper.sampler not in SAMPLERS:
        raise ConfigError(field("sampler"), f"unknown sampler {sweeper.sampler!r}; "
                                            f"choose one of: {', '.join(SAMPLERS)}")
    if sweeper.direction not in ("maximize", "minimize"):
        raise ConfigError(field("direction"), f"must be maximize or minimize, got {sweeper.direction!r}")
    key = parse_metric_name(sweeper.metric)
    if key is None or key.split != "validation":
        raise ConfigError(field("metric"), f"{sweeper.metric!r} is not a validation metric; "
                          f"e.g. validation/target_mean/accuracy or validation/en/accuracy")
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ConfigError("hparams_search", "Optuna is not installed: pip install -e '.[optuna]'") from None


def search_space(overrides: list) -> Tuple[List[str], Dict[str, object]]:
    """Hydra overrides -> (fixed overrides, {key: Optuna distribution}) for the swept ones.

    interval(a, b) is a float range (ints with int(interval(...))), tag(log, ...) samples it
    on a log scale, choice(...), range(...) and a,b,c are categorical.
    """
    from hydra.core.override_parser.types import IntervalSweep
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    fixed, space = [], {}
    for o in overrides:
        if not o.is_sweep_override():
            fixed.append(o.input_line)
            continue
        key, value = o.get_key_element(), o.value()
        try:
            if isinstance(value, IntervalSweep):
                ints = isinstance(value.start, int) and isinstance(value.end, int)
                kind = IntDistribution if ints else FloatDistribution
                space[key] = kind(value.start, value.end, log="log" in value.tags)
            else:
                space[key] = CategoricalDistribution(list(o.sweep_iterator()))
        except ValueError as e:  # Optuna's own check, e.g. a log range that starts at 0
            raise ConfigError(key, first_line(e)) from None
    return fixed, space


def corner_jobs(fixed: List[str], space: Dict[str, object]) -> List[List[str]]:
    """Jobs that put every searched value at each end of its range (each choice once): what
    precheck validates before the study starts."""
    from optuna.distributions import CategoricalDistribution

    ends = {key: list(d.choices) if isinstance(d, CategoricalDistribution) else [d.low, d.high]
            for key, d in space.items()}
    first = {key: values[0] for key, values in ends.items()}
    jobs = [fixed + [f"{k}={v}" for k, v in first.items()]]
    for key, values in ends.items():
        for value in values[1:]:
            jobs.append(fixed + [f"{k}={value if k == key else v}" for k, v in first.items()])
    return jobs


def as_overrides(params: Dict[str, object]) -> List[str]:
    """A trial's values as Hydra overrides, `key=value`; floats to 4 significant digits, which
    is what the job runs with (learning_rate=0.0001605, not 0.00016051911333587616)."""
    return [f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in params.items()]


class OptunaSweeper(Sweeper):
    # Hydra passes each field of OptunaSweeperConf as an argument.
    def __init__(self, n_trials: int = 20, n_jobs: int = 2, metric: str = OptunaSweeperConf.metric,  # noqa: PLR0913
                 direction: str = "maximize", sampler: str = "tpe", seed: int = 0,
                 study_name: Optional[str] = None, storage: Optional[str] = None,
                 params: Optional[Dict[str, str]] = None):
        super().__init__(params=params)
        self.n_trials, self.n_jobs, self.metric, self.direction = n_trials, n_jobs, metric, direction
        self.sampler, self.seed, self.study_name, self.storage = sampler, seed, study_name, storage

    def setup(self, *, hydra_context, task_function, config) -> None:
        if "n_jobs" in config.hydra.launcher:  # xlt's launcher: a batch of trials runs side by side
            with open_dict(config):
                config.hydra.launcher.n_jobs = self.n_jobs
                config.hydra.overrides.hydra.append(f"hydra.launcher.n_jobs={self.n_jobs}")  # the jobs' configs
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> List[Sequence[JobReturn]]:
        fixed, space = search_space(self._parse(arguments))
        self._start()
        study = self._study(fixed, space)
        configs, returns = {}, []
        for trials, batch in self._batches(study, fixed, space, configs):
            for trial, o in zip(trials, batch):
                self._tell(study, trial, o, configs[o.num])
            returns.append([o.job_return for o in batch if o.job_return is not None])
            if any(o.status in (KILLED, NOT_STARTED) for o in batch):  # the sweep was stopped
                break
        self._best(study, self.sweep_dir)
        self._finish(configs)
        return [batch for batch in returns if batch]

    def _batches(self, study, fixed: List[str], space: Dict[str, object], configs: dict):
        """Batches of `n_jobs` trials, asked, validated and run, until `n_trials` have finished."""
        from optuna.trial import TrialState

        done = [t for t in study.trials if t.state == TrialState.COMPLETE]
        todo = max(0, self.n_trials - len(done))
        self._retry_failed(study, todo)
        log.info("Optuna study %r (%s): %d of %d trials finished, %d to run, %d at a time",
                 study.study_name, self.storage, len(done), self.n_trials, todo, self.n_jobs)
        if not todo:
            log.info("The study is complete; hydra.sweeper.n_trials=%d continues it", len(done) + self.n_trials)

        while todo > 0:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, todo))]
            jobs = [(t.number, fixed + as_overrides(t.params)) for t in trials]
            configs.update({num: self._config(job) for num, job in jobs})
            yield trials, self._run(jobs, configs)
            todo -= len(trials)

    def _study(self, fixed: List[str], space: Dict[str, object]):
        import optuna

        base = self._config(fixed)
        if self.study_name is None:
            described = config_hash(base) + repr(sorted((k, repr(d)) for k, d in space.items()))
            self.study_name = f"{base.tracking.experiment}-{hashlib.sha256(described.encode()).hexdigest()[:8]}"
        if self.storage is None:
            path = Path(str(self.config.output_dir)).resolve() / "optuna.db"
            path.parent.mkdir(parents=True, exist_ok=True)
            self.storage = f"sqlite:///{path}"
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # xlt logs each trial itself
        study = optuna.create_study(study_name=self.study_name, storage=self.storage,
                                    direction=self.direction, load_if_exists=True)
        # Seeded by the trials so far: a continued study does not redraw the first run's values.
        seed = self.seed + len(study.trials)
        study.sampler = (optuna.samplers.TPESampler(seed=seed) if self.sampler == "tpe"
                         else optuna.samplers.RandomSampler(seed=seed))
        return study

    def _retry_failed(self, study, budget: int) -> None:
        """Trials a dead sweep left RUNNING end FAILED; failed trials' values are asked again
        first (a stopped trial's job then resumes from its checkpoint)."""
        from optuna.trial import TrialState

        for t in study.trials:
            if t.state == TrialState.RUNNING:
                study.tell(t.number, state=TrialState.FAIL)
        settled = [t.params for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.WAITING)]
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            if budget and t.params and t.params not in settled:
                study.enqueue_trial(t.params)
                settled.append(t.params)
                budget -= 1

    def _tell(self, study, trial, o: Outcome, cfg) -> None:
        from optuna.trial import TrialState

        from xlt.tracking.store import selected_score

        value = None
        if o.status in (FINISHED, SKIPPED) and o.run_id:
            value = selected_score(cfg.tracking_uri, o.run_id, self.metric)
            if value is None:
                o.status, o.error = FAILED, f"its run logged no {self.metric} (no evaluation round?)"
        if o.run_id:
            trial.set_user_attr("run_id", o.run_id)
        if value is None:
            trial.set_user_attr("error", o.error or o.status)
            study.tell(trial, state=TrialState.FAIL)
            log.error("trial %d %s: %s", trial.number, o.status, o.error)
        else:
            study.tell(trial, value)
            log.info("trial %d: %s %.4f (%s)", trial.number, self.metric, value,
                     " ".join(as_overrides(trial.params)))

    def _best(self, study, sweep_dir: Path) -> None:
        """Print the best trial and write it to `<sweep dir>/best_trial.yaml`."""
        from optuna.trial import TrialState

        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if not finished:
            log.error("Optuna study %r: no trial has finished yet", study.study_name)
            return
        best = study.best_trial
        overrides = " ".join(as_overrides(best.params))
        result = {"study": study.study_name, "storage": self.storage, "metric": self.metric,
                  "direction": self.direction, "finished_trials": len(finished), "failed_trials": len(failed),
                  "best": {"trial": best.number, "value": best.value, "params": best.params,
                           "run_id": best.user_attrs.get("run_id"), "overrides": overrides}}
        path = sweep_dir / "best_trial.yaml"
        OmegaConf.save(OmegaConf.create(result), path)
        print(f"\nBest of {len(finished)} finished trials ({len(failed)} failed) in study {study.study_name!r}: "
              f"trial {best.number}, {self.metric} = {best.value:.4f}\n  {overrides}\n"
              f"  run {best.user_attrs.get('run_id')}  (written to {path})", flush=True)
