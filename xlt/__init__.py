"""xlt: zero-shot cross-lingual transfer sweeps on XNLI (Hydra + Trainer + MLflow)."""

__version__ = "0.1.0"
