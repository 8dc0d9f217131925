#!/usr/bin/env python
"""xlt entry point: `python run.py [-m] [group=option ...] [field=value ...]` (see README)."""
import sys

import hydra
from omegaconf import DictConfig

from xlt.cli.app import interrupted, run_task
from xlt.config import register_schema

register_schema()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> dict:
    return run_task(cfg)


if __name__ == "__main__":
    from xlt.cli.precheck import check_command_line, per_job_plugin_options

    sys.argv[1:] = per_job_plugin_options(sys.argv[1:])
    check_command_line(sys.argv[1:])  # every job's config, validated before any job starts
    try:
        main()  # a sweep that failed or was stopped exits with its status (xlt.sweep.end)
    except KeyboardInterrupt as e:  # a single run, stopped
        print(interrupted(e), file=sys.stderr)
        sys.exit(130)
