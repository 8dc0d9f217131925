"""The `xlt` command: `xlt reproduce`, `xlt report`, `xlt sync` and `xlt aim-up` (sweeps run through
`python run.py`)."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from xlt.core.errors import ConfigError

DEFAULT_STORE = "sqlite:///logs/mlflow.db"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xlt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    rep = commands.add_parser("reproduce", help="re-run a job from its saved config snapshot")
    rep.add_argument("target", metavar="RUN_ID|JOB_DIR", help="an MLflow run id, or a job's output directory")
    rep.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. train.seed=1")
    rep.add_argument("--mlflow-tracking-uri", default=DEFAULT_STORE,
                     help=f"the store holding RUN_ID (default: {DEFAULT_STORE})")

    rpt = commands.add_parser("report", help="tables, charts and findings of a sweep or an experiment")
    rpt.add_argument("--mlflow-tracking-uri", default=DEFAULT_STORE, help=f"default: {DEFAULT_STORE}")
    rpt.add_argument("--experiment", help="the MLflow experiment (default: every experiment)")
    rpt.add_argument("--sweep-id", help="one sweep: its directory's name, e.g. 2026-11-24_06-14-52_k3x9q2")
    rpt.add_argument("--out", help="the report's directory (default: logs/report/<sweep id or experiment>)")
    rpt.add_argument("--references", action="append", default=[], metavar="CSV",
                     help="published scores to set beside the runs, in the columns of xlt's own "
                     "references.csv (repeatable; docs: how-to/report)")

    syn = commands.add_parser("sync", help="convert MLflow runs into an Aim repository (incrementally)")
    syn.add_argument("--mlflow-tracking-uri", default=DEFAULT_STORE, help=f"default: {DEFAULT_STORE}")
    syn.add_argument("--aim-repo", default="logs/aim", help="created if missing (default: logs/aim)")
    syn.add_argument("--experiment", action="append", default=[], metavar="NAME",
                     help="sync only this MLflow experiment (repeatable; default: all)")
    syn.add_argument("--exclude-artifacts", action="append", default=[], metavar="GLOB",
                     help="skip artifacts matching this glob (repeatable), e.g. 'hydra/*'")
    syn.add_argument("--workers", type=int, help="processes writing runs (default: a core each, at most 4, "
                     "with at least 100 runs each to write; else 1)")
    syn.add_argument("--watch", action="store_true", help="keep syncing until Ctrl-C")
    syn.add_argument("--interval", type=float, default=10.0, help="seconds between syncs with --watch (default 10)")

    ui = commands.add_parser("aim-up", help="Aim's UI (`aim up`), its server stopped with it by any stop signal")
    ui.add_argument("--repo", default="logs/aim", help="the Aim repository (default: logs/aim)")
    ui.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    ui.add_argument("--port", type=int, default=43800, help="default: 43800")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = _parser()
    # Overrides may also follow the options (`xlt reproduce ID --mlflow-tracking-uri U a=b`),
    # which a nargs="*" positional alone does not accept.
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command != "reproduce" or any(e.startswith("-") for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides += extra
    try:
        if getattr(args, "mlflow_tracking_uri", None):
            args.mlflow_tracking_uri = store_uri(args.mlflow_tracking_uri)
        if args.command == "reproduce":
            from xlt.cli.reproduce import reproduce

            return reproduce(args.target, args.overrides, args.mlflow_tracking_uri)
        if args.command == "sync":
            return _sync(args)
        if args.command == "report":
            return _report(args)
        if args.command == "aim-up":
            return _aim_up(args)
    except ConfigError as e:
        print(f"xlt: error: {e}", file=sys.stderr)
        return 2
    return 0


def _report(args) -> int:
    from pathlib import Path

    _check_store(args.mlflow_tracking_uri)
    from xlt.report.publish import report
    from xlt.report.results import NoRuns

    out = Path(args.out or Path("logs") / "report" / (args.sweep_id or args.experiment or "all"))
    try:
        report(args.mlflow_tracking_uri, out, experiment=args.experiment, sweep_id=args.sweep_id,
               references=args.references)
    except NoRuns as e:
        raise ConfigError("--sweep-id" if args.sweep_id else "--experiment", str(e)) from None
    print(f"xlt report: {out / 'report.html'} (also report.md, results.csv)")
    return 0


def store_uri(given: str) -> str:
    """An MLflow URI as given, or a bare path made one: a database file (sqlite:///ABS), a directory
    holding mlflow.db, or an MLflow file store (a directory with experiments: file://ABS)."""
    from pathlib import Path

    if "://" in given:
        return given
    path = Path(given).expanduser().resolve()
    if path.is_dir() and (path / "mlflow.db").is_file():
        path = path / "mlflow.db"
    if path.is_file() or path.suffix == ".db":
        return f"sqlite:///{path}"
    if path.is_dir() and (path / "0").is_dir():  # an MLflow file store: experiment 0 is its default
        return f"file://{path}"
    raise ConfigError("--mlflow-tracking-uri", f"{given!r} is no MLflow store: give sqlite:///PATH/mlflow.db, "
                                               "a server's http://HOST:PORT, or the path of an mlflow.db file")


def _check_store(uri: str, writing: bool = True) -> None:
    """The store exists and is a sound database (the report writes its sweep's parent run)."""
    from xlt.tracking.store import store_exists, store_problem

    if not store_exists(uri):
        raise ConfigError("--mlflow-tracking-uri", f"no MLflow store at {uri}")
    problem = store_problem(uri, writing=writing)
    if problem:
        raise ConfigError("--mlflow-tracking-uri", problem.replace("tracking.uri", "--mlflow-tracking-uri"))


def _sync(args) -> int:
    from pathlib import Path

    from xlt.tracking.sync import repo_problem, sync, watch
    from xlt.tracking.sync_workers import WorkerStopped

    _check_store(args.mlflow_tracking_uri, writing=False)
    if repo_problem(Path(args.aim_repo)):
        raise ConfigError("--aim-repo", repo_problem(Path(args.aim_repo)))
    if args.interval <= 0:
        raise ConfigError("--interval", f"must be a positive number of seconds, got {args.interval}")
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers", f"must be 1 or more processes, got {args.workers}")
    repo = Path(args.aim_repo)
    if repo.exists() and not repo.is_dir():
        raise ConfigError("--aim-repo", f"{str(repo)!r} is a file; give a directory")
    options = dict(experiments=args.experiment, exclude_artifacts=args.exclude_artifacts)
    if args.watch:
        watch(args.mlflow_tracking_uri, repo, args.interval, **options)
    else:
        from xlt.core.console import on_terminal

        try:
            counts = sync(args.mlflow_tracking_uri, repo, progress=on_terminal(sys.stderr), workers=args.workers,
                          **options)
        except WorkerStopped as e:
            print(f"xlt sync: {e}", file=sys.stderr)
            return 1
        print(counts.line(repo.resolve()))
    return 0


def _aim_up(args) -> int:
    from pathlib import Path

    from xlt.cli.aim_up import aim_up

    if not (Path(args.repo) / ".aim").is_dir():
        raise ConfigError("--repo", f"{args.repo!r} is no Aim repository; a sweep or `xlt sync` makes one")
    return aim_up(args.repo, args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
