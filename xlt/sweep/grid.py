"""The jobs of a grid sweep, expanded as Hydra's basic sweeper expands them.

Used by the sweeper to launch them and by the command-line check (xlt.cli.precheck) to
validate every one before the first starts: both see the same jobs in the same order.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from xlt.config import XltConfig


def parse(arguments: List[str], config_loader=None) -> list:
    """Hydra's Override objects of command-line arguments."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create(config_loader=config_loader).parse_overrides(list(arguments))


def with_params(params: Optional[Dict[str, str]], arguments: List[str]) -> List[str]:
    """A sweeper's `params`, then the command line, which wins (Hydra's order)."""
    return [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)


def grid_jobs(parsed: list) -> List[List[str]]:
    """Every job's overrides, in launch order, as Hydra's basic sweeper expands them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    return [list(job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def jobs(params: Optional[Dict[str, str]], arguments: List[str], config_loader=None) -> List[List[str]]:
    """Every job's overrides of the grid, in launch order (before `protocol_jobs`)."""
    return grid_jobs(parse(with_params(params, arguments), config_loader))


def is_hydra_key(key: str) -> bool:
    """Hydra's own settings (hydra.launcher.n_jobs, hydra/launcher=...), not a job's."""
    return key.lstrip("+~").startswith(("hydra.", "hydra/"))


def protocol_jobs(jobs: List[List[str]], typed: Callable[[List[str]], XltConfig]) -> List[List[str]]:
    """Each job, as the jobs its protocol makes of it (translate-train: one per target language,
    `protocol.target=LANG` added); `typed` composes a job's overrides into its config."""
    from xlt.protocols import expand

    return [job + extra for job, cfg in fit_plugin_options(jobs, typed) for extra in expand(cfg)]


def fit_plugin_options(jobs: List[List[str]],
                       typed: Callable[[List[str]], XltConfig]) -> List[Tuple[List[str], XltConfig]]:
    """(overrides, config) of each job. In a sweep over a plugin group (protocol=zero_shot,few_shot),
    an option of one plugin (protocol.shots=8) goes to the jobs whose plugin has it and is left out
    of the others; one that no job's plugin has is the error it would be in a single run."""
    fitted, used, first_error = [], set(), {}
    for job in jobs:
        while True:
            try:
                fitted.append((job, typed(job)))
                break
            except Exception as e:  # noqa: BLE001 - re-raised unless a plugin option another job has
                key = _plugin_key_missing(e)
                left = [o for o in job if key is None or not _sets(o, key)]
                if len(left) == len(job):
                    raise
                first_error.setdefault(key, e)
                job = left
        used.update(o for o in job if "=" in o)
    unused = [key for key, e in first_error.items() if not any(_sets(o, key) for o in used)]
    if unused:
        raise first_error[unused[0]]
    return fitted


def _sets(override: str, key: str) -> bool:
    name = override.lstrip("+~").split("=", 1)[0]
    return name == key or name.startswith(key + ".")


def _plugin_key_missing(e: BaseException) -> Optional[str]:
    """The key of a plugin group's node that the chosen plugin lacks (protocol.shots with zero_shot)."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    from xlt.config.plugins import GROUPS

    while e is not None and not isinstance(e, (ConfigKeyError, ConfigAttributeError)):
        e = e.__cause__
    key = getattr(e, "full_key", None) or ""
    return key if key.partition(".")[0] in GROUPS and "." in key else None


def in_batches(jobs: List[List[str]], max_batch_size: Optional[int] = None) -> List[List[List[str]]]:
    """Jobs in launch batches of at most `max_batch_size` (one batch if None)."""
    size = max_batch_size or max(1, len(jobs))
    return [jobs[i:i + size] for i in range(0, len(jobs), size)]
