"""The `xlt` command: `xlt reproduce` and `xlt sync` (sweeps run through `python run.py`)."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from xlt.errors import ConfigError

DEFAULT_STORE = "sqlite:///logs/mlflow.db"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xlt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    rep = commands.add_parser("reproduce", help="re-run a job from its saved config snapshot")
    rep.add_argument("target", metavar="RUN_ID|JOB_DIR", help="an MLflow run id, or a job's output directory")
    rep.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. train.seed=1")
    rep.add_argument("--mlflow-tracking-uri", default=DEFAULT_STORE,
                     help=f"the store holding RUN_ID (default: {DEFAULT_STORE})")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "reproduce":
            from xlt.reproduce import reproduce

            return reproduce(args.target, args.overrides, args.mlflow_tracking_uri)
    except ConfigError as e:
        print(f"xlt: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
