"""Is a Hugging Face Hub model or dataset loadable here? Asked once, before any job starts.

Offline, the hub clients retry for about a minute per file; a cache lookup plus one
short connection attempt answers the same question in seconds.
"""
from __future__ import annotations

import os
import socket
from typing import Optional
from urllib.parse import urlparse

OFFLINE_MODEL = "offline, use model=tiny or model=local model.path=DIR"
OFFLINE_DATA = "offline, use data=sample or data=jsonl data.dir=DIR"


def _offline() -> bool:
    return any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _hub_reachable(timeout: float = 3.0) -> bool:
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def model_problem(repo_id: str) -> Optional[str]:
    """Why `repo_id` cannot be loaded, or None if it is cached or the hub answers."""
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return None
    if _offline():
        return f"{repo_id!r} is not in the Hugging Face cache and the hub is switched off; {OFFLINE_MODEL}"
    if not _hub_reachable():
        return f"{repo_id!r} is not cached and the Hugging Face Hub cannot be reached; {OFFLINE_MODEL}"
    return None


def dataset_problem(repo_id: str) -> Optional[str]:
    """Why the hub dataset cannot be loaded, or None (offline, `datasets` uses its own cache)."""
    if _offline() or _hub_reachable():
        return None
    return f"{repo_id!r} cannot be downloaded: the Hugging Face Hub cannot be reached; {OFFLINE_DATA}"
