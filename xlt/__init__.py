"""xlt: cross-lingual transfer sweeps (Hydra + Trainer + MLflow + Aim).

One layer per sub-package; a module imports only from layers below its own (checked by
`lint-imports`, the contract in pyproject.toml):

    cli         the `xlt` command, run.py's job entry, the check of a command line
    sweep       Hydra plugins: grid and Optuna sweepers, launcher, settling, end of a sweep
    report      results tables, findings, charts, the report   |  train   one job: Trainer, selection, stops
    techniques  one module per technique: what trains, what may be cached
    model       encoders and tokenizers, pooling, heads, cached features
    data        tasks' rows: JSONL, hub pins, tokenized splits  |  tracking   MLflow runs and store, Aim sync
    protocols   one module per protocol: what a job trains on, tests, selects on; the jobs of a sweep
    config      the typed schema, the plugin groups and their interfaces, validation
    core        errors, secrets, console, metric and tag names, devices
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`xlt.load_results`, `xlt.load_predictions`, `xlt.load_saved`: imported only when asked for (they bring pandas,
    MLflow, torch)."""
    if name in ("load_results", "load_curves"):
        from xlt.report import results

        return getattr(results, name)
    if name == "load_predictions":
        from xlt.tracking.predictions import load_predictions

        return load_predictions
    if name == "load_saved":
        from xlt.train.saved import load_saved

        return load_saved
    raise AttributeError(f"module 'xlt' has no attribute {name!r}")
