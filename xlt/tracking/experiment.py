"""The MLflow experiment of a config: created once, whoever comes first (jobs, or the sweep's parent run)."""
from __future__ import annotations

from pathlib import Path

from xlt.config import XltConfig


def experiment_id(cfg: XltConfig) -> str:
    """Get or create the experiment; artifacts of a local store live under output_dir."""
    import mlflow
    from filelock import FileLock

    def get_or_create() -> str:
        found = mlflow.get_experiment_by_name(cfg.tracking.experiment)
        if found is not None:
            return found.experiment_id
        location = None
        if cfg.tracking_uri.startswith("sqlite:") and not cfg.tracking.uri:
            location = (Path(cfg.output_dir).resolve() / "mlartifacts").as_uri()
        return mlflow.create_experiment(cfg.tracking.experiment, artifact_location=location)

    if not cfg.tracking_uri.startswith("sqlite:"):
        # A server (jobs on many machines, no shared lock): the first creation wins, the rest read it.
        from mlflow.exceptions import MlflowException

        try:
            return get_or_create()
        except MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return mlflow.get_experiment_by_name(cfg.tracking.experiment).experiment_id
    # Parallel jobs must not create the SQLite schema or the experiment twice.
    cfg.cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cfg.cache_dir / "mlflow.lock")):
        return get_or_create()
