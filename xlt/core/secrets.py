"""Keep credentials out of everything xlt logs: params, tags, artifacts, error messages."""
from __future__ import annotations

import logging
import os
import re

# Environment variables whose values are credentials, wherever else they may show up.
SECRET_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN", "MLFLOW_TRACKING_TOKEN",
              "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_USERNAME", "AWS_SECRET_ACCESS_KEY",
              "AWS_SESSION_TOKEN", "AZURE_STORAGE_ACCESS_KEY", "DATABRICKS_TOKEN")
MASK = "***"
_PATTERNS = (
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),  # Hugging Face access tokens
    re.compile(r"(?<=://)[^/\s:@\\]+\\?:[^/\s@]+(?=@)"),  # user:password@ in URIs (`\:` as Hydra escapes it)
    re.compile(r"(?i)(?<=token=)[^&\s'\"]+"),  # ?token=... in URLs
)


def scrub(text: str) -> str:
    """`text` with every known credential replaced by ***."""
    for name in SECRET_ENV:
        value = os.environ.get(name, "")
        if len(value) >= 4:  # never mask single characters all over a text
            text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    return text


class ScrubFilter(logging.Filter):
    """A logging filter that masks credentials in every record a handler writes: the console (and the SLURM
    log file that keeps it), a job's run.log (conf/hydra/*_logging/xlt.yaml)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = scrub(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
