"""Hydra finds plugins only under `hydra_plugins`: xlt's sweepers and launcher, named here, and
their configs registered (`hydra/launcher=xlt`, `hydra/sweeper=xlt`, `hydra/sweeper=xlt_optuna`).

Their code lives in the sweep layer: `xlt.sweep.sweeper`, `xlt.sweep.search`, `xlt.sweep.launcher`.
`conf/config.yaml` selects the launcher and, through `conf/sweeper.yaml`, the grid sweeper;
`hparams_search=optuna` the Optuna one.
"""
from xlt.sweep.launcher import Launcher
from xlt.sweep.plugins import register_plugin_configs
from xlt.sweep.search import OptunaSweeper
from xlt.sweep.sweeper import Sweeper

register_plugin_configs()


class XltLauncher(Launcher):
    """Each job in its own process; a job's death ends that job only."""


class XltSweeper(Sweeper):
    """Hydra's basic sweep, which skips finished jobs, survives failed ones and reports."""


class XltOptunaSweeper(OptunaSweeper):
    """An Optuna study whose trials are xlt jobs (hparams_search=optuna)."""
