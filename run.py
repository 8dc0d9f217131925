#!/usr/bin/env python
"""xlt entry point: `python run.py [-m] [group=option ...] [field=value ...]` (see README)."""
import sys

import hydra
from omegaconf import DictConfig

from xlt.config import register_schema
from xlt.errors import ConfigError

register_schema()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> dict:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from xlt.job import run_job  # torch and transformers load only once a job runs

    try:
        return run_job(cfg)
    except ConfigError as e:  # found only at run time, e.g. a corrupt JSONL line
        print(f"xlt: error: {e}", file=sys.stderr)
        sys.exit(2)
    finally:
        if HydraConfig.get().mode == RunMode.RUN:  # a sweep syncs once, at its end
            from xlt.sync import sync_after

            sync_after([cfg])


if __name__ == "__main__":
    from xlt.precheck import check_command_line

    check_command_line(sys.argv[1:])  # every job's config, validated before any job starts
    try:
        main()
    except KeyboardInterrupt as e:  # a single run, stopped
        checkpoint = getattr(e, "checkpoint", None)
        print(f"xlt: interrupted; checkpoint saved at {checkpoint}, the same command resumes the run"
              if checkpoint else "xlt: interrupted before any checkpoint; the same command starts the job again",
              file=sys.stderr)
        sys.exit(130)
    from xlt import sweeper

    sys.exit(sweeper.exit_code)  # 0 for a single run
