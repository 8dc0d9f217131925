"""OmegaConf resolvers xlt's config files use, registered when xlt.config is imported (in every
process that resolves a job's config: the sweep's and each job's).

`${xlt.unique:}` is a short random tag, drawn once per config like Hydra's `${now:...}` (cached,
and Hydra copies the cache into every job's config): it makes a sweep directory unique even for
sweeps started in the same second, on one machine or many (SLURM arrays, scripts).
"""
from __future__ import annotations

import secrets
import string

from omegaconf import OmegaConf

ALPHABET = string.ascii_lowercase + string.digits


def unique_tag(length: int = 6) -> str:
    """36^6, about 2e9 values: two sweeps in the same second share one with odds of 1 in 2e9."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("xlt.unique"):
        OmegaConf.register_new_resolver("xlt.unique", unique_tag, use_cache=True)
