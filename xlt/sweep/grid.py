"""The jobs of a grid sweep, expanded as Hydra's basic sweeper expands them.

Used by the sweeper to launch them and by the command-line check (xlt.cli.precheck) to
validate every one before the first starts: both see the same jobs in the same order.
"""
from __future__ import annotations

from typing import Dict, List, Optional


def parse(arguments: List[str], config_loader=None) -> list:
    """Hydra's Override objects of command-line arguments."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create(config_loader=config_loader).parse_overrides(list(arguments))


def with_params(params: Optional[Dict[str, str]], arguments: List[str]) -> List[str]:
    """A sweeper's `params`, then the command line, which wins (Hydra's order)."""
    return [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)


def batches(parsed: list, max_batch_size: Optional[int] = None) -> List[List[List[str]]]:
    """Every job's overrides, in batches of at most `max_batch_size` jobs (one batch if None)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    return [[list(job) for job in batch] for batch in BasicSweeper.split_arguments(parsed, max_batch_size)]


def jobs(params: Optional[Dict[str, str]], arguments: List[str], config_loader=None) -> List[List[str]]:
    """Every job's overrides, in launch order."""
    return [job for batch in batches(parse(with_params(params, arguments), config_loader)) for job in batch]


def is_hydra_key(key: str) -> bool:
    """Hydra's own settings (hydra.launcher.n_jobs, hydra/launcher=...), not a job's."""
    return key.lstrip("+~").startswith(("hydra.", "hydra/"))
