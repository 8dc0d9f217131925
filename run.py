#!/usr/bin/env python
"""xlt entry point: `python run.py [-m] [group=option ...] [field=value ...]` (see README)."""
import sys

import hydra
from omegaconf import DictConfig

from xlt.config import register_schema
from xlt.errors import ConfigError

register_schema()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    from xlt.job import run_job  # torch and transformers load only once a job runs

    try:
        return run_job(cfg)
    except ConfigError as e:  # found only at run time, e.g. a corrupt JSONL line
        print(f"xlt: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    from xlt.precheck import check_command_line

    check_command_line(sys.argv[1:])  # every job's config, validated before any job starts
    main()
