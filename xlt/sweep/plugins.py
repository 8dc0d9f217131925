"""The configs of xlt's Hydra plugins, and their registration in Hydra's ConfigStore.

`register_plugin_configs` runs when Hydra scans `hydra_plugins` (hydra_plugins/xlt_sweep), so
`hydra/launcher=xlt` (which runs any Hydra app's jobs), `hydra/sweeper=xlt` and
`hydra/sweeper=xlt_optuna` (which sweep xlt's jobs; another app's config is a one-line error) exist
in any Hydra app, as Hydra's own plugins register theirs; with them, the built-in techniques' and
protocols' options (xlt.config.plugins), which conf/technique and conf/protocol extend.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from omegaconf import OmegaConf

from xlt.core.devices import visible_gpus
from xlt.core.metrics import TARGET_MEAN, metric_name

PROVIDER = "xlt"


@dataclass
class LauncherConf:
    _target_: str = "hydra_plugins.xlt_sweep.XltLauncher"
    n_jobs: int = 1  # jobs at a time; with N GPUs, n_jobs=N gives every job a GPU of its own
    stop_timeout: float = 300.0  # seconds a stopped job gets to reach a checkpoint


@dataclass
class SweeperConf:
    _target_: str = "hydra_plugins.xlt_sweep.XltSweeper"
    max_batch_size: Optional[int] = None  # jobs launched per batch, as in Hydra's basic sweeper
    params: Optional[Dict[str, str]] = None


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.xlt_sweep.XltOptunaSweeper"
    n_trials: int = 20  # finished trials the study reaches; rerunning the command continues it
    n_jobs: int = 2  # trials in flight at once (xlt's launcher runs them side by side)
    metric: str = metric_name("validation", "accuracy", TARGET_MEAN)  # of the weights train.select chose
    direction: str = "maximize"
    sampler: str = "tpe"  # tpe | random
    seed: int = 0
    study_name: Optional[str] = None  # default: <experiment>-<hash of the fixed overrides and the space>
    storage: Optional[str] = None  # default: sqlite:///<output_dir>/optuna.db
    params: Optional[Dict[str, str]] = None  # key: interval(a, b) | tag(log, interval(a, b)) | choice(...) | value


def gpus_per_job() -> int:
    """conf/hydra/launcher/ray_local.yaml: a GPU per job where this machine has any, as xlt's launcher gives."""
    return 1 if visible_gpus() else 0


def register_plugin_configs() -> None:
    from hydra.core.config_store import ConfigStore

    from xlt.config.plugins import register_options

    register_options()  # conf/technique and conf/protocol extend them, in any process that composes
    store = ConfigStore.instance()
    store.store(group="hydra/launcher", name="xlt", node=LauncherConf, provider=PROVIDER)
    store.store(group="hydra/sweeper", name="xlt", node=SweeperConf, provider=PROVIDER)
    store.store(group="hydra/sweeper", name="xlt_optuna", node=OptunaSweeperConf, provider=PROVIDER)
    OmegaConf.register_new_resolver("xlt_gpus_per_job", gpus_per_job, replace=True)
