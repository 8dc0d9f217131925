"""The MLflow experiment of a config: created once, whoever comes first (jobs, sweeps with other
output directories, the sweep's parent run), with its artifacts beside its store, never under
the working directory of whoever created it."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from xlt.config import XltConfig

SQLITE = "sqlite:///"


def sqlite_file(uri: str) -> Optional[Path]:
    """The database file of a local SQLite store, or None for any other store."""
    return Path(uri[len(SQLITE):]).expanduser().resolve() if uri.startswith(SQLITE) else None


def artifact_location(uri: str) -> Optional[str]:
    """Where a new experiment keeps its artifacts: `mlartifacts/` beside a SQLite store's file (MLflow's own
    default, `./mlruns`, would follow the working directory); a server's own location otherwise."""
    db = sqlite_file(uri)
    return (db.parent / "mlartifacts").as_uri() if db else None


def experiment_id(cfg: XltConfig) -> str:
    """Get or create the experiment, in the config's store whatever the process's default."""
    import mlflow
    from filelock import FileLock

    def get_or_create(client) -> str:
        found = client.get_experiment_by_name(cfg.tracking.experiment)
        if found is not None:
            return found.experiment_id
        return client.create_experiment(cfg.tracking.experiment, artifact_location=artifact_location(cfg.tracking_uri))

    db = sqlite_file(cfg.tracking_uri)
    if db is None:
        # A server (jobs on many machines, no shared lock): the first creation wins, the rest read it.
        from mlflow.exceptions import MlflowException

        client = mlflow.MlflowClient(cfg.tracking_uri)
        try:
            return get_or_create(client)
        except MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return client.get_experiment_by_name(cfg.tracking.experiment).experiment_id
    # Every process that opens this store, whatever its output_dir, must not create the schema (which
    # a client's first use of a new database does) or the experiment twice: the lock lives beside it.
    db.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(db.with_name(db.name + ".lock"))):
        return get_or_create(mlflow.MlflowClient(cfg.tracking_uri))
