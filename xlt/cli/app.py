"""The body of run.py's Hydra task: one job, with what a person expects around it.

A configuration error found only at run time (e.g. a corrupt hub file) is one line and exit 2;
a single run (not a sweep) syncs into Aim at its end, as a sweep does once at its own end.
"""
from __future__ import annotations

import json
import os
import sys

from omegaconf import DictConfig

from xlt.core.errors import ConfigError

RESULT_FILE_ENV = "XLT_RESULT_FILE"  # a program that starts a run (xlt reproduce) reads its result here


def run_task(cfg: DictConfig) -> dict:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from xlt.train.job import train_and_test  # torch and transformers load only once a job runs

    try:
        result = train_and_test(cfg)
        if result.get("skipped"):
            print(f"xlt: not run: {result['skipped']}", file=sys.stderr)
        if os.environ.get(RESULT_FILE_ENV):
            with open(os.environ[RESULT_FILE_ENV], "w") as f:
                json.dump(result, f)
        return result
    except ConfigError as e:
        print(f"xlt: error: {e}", file=sys.stderr)
        sys.exit(2)
    finally:
        if HydraConfig.get().mode == RunMode.RUN:  # a sweep syncs once, at its end
            _sync_single_run(cfg)


def _sync_single_run(cfg: DictConfig) -> None:
    from xlt.protocols import validate_job
    from xlt.sweep.end import sync_after

    try:
        sync_after([validate_job(cfg)])
    except ConfigError:  # reported already; nothing was logged
        pass


def interrupted(e: KeyboardInterrupt) -> str:
    """What a stopped single run tells its user."""
    checkpoint = getattr(e, "checkpoint", None)
    if checkpoint:
        return f"xlt: interrupted; checkpoint saved at {checkpoint}, the same command resumes the run"
    return "xlt: interrupted before any checkpoint; the same command starts the job again"
