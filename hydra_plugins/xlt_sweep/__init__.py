"""Hydra finds plugins only under `hydra_plugins`: xlt's sweeper and launcher, named here.

Their code lives in `xlt.sweeper`, `xlt.search` and `xlt.launcher`. `conf/config.yaml` selects the
launcher and, through `conf/sweeper.yaml`, the grid sweeper; `hparams_search=optuna` the Optuna one.
"""
from xlt.launcher import Launcher
from xlt.search import OptunaSweeper
from xlt.sweeper import Sweeper


class XltLauncher(Launcher):
    """Each job in its own process; a job's death ends that job only."""


class XltSweeper(Sweeper):
    """Hydra's basic sweep, which skips finished jobs, survives failed ones and reports."""


class XltOptunaSweeper(OptunaSweeper):
    """An Optuna study whose trials are xlt jobs (hparams_search=optuna)."""
