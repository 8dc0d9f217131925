"""Does the MLflow tracking server answer? Asked once, before any job starts.

MLflow's client retries an unreachable server for minutes (per job, per call); one request
with a short timeout answers the same question. Any HTTP answer counts, even 401 or 404:
a server is there, and the jobs' own calls report what it says.
"""
from __future__ import annotations

from typing import Optional

TIMEOUT_S = 5.0
LOCAL_STORE = "leave tracking.uri unset for the local SQLite store"


def server_problem(uri: str, timeout: float = TIMEOUT_S) -> Optional[str]:
    """Why `uri` (http or https) cannot be used, or None if a server answers."""
    import requests

    from xlt.core.secrets import scrub

    try:
        requests.get(uri.rstrip("/") + "/health", timeout=timeout)  # proxies from the environment
    except requests.exceptions.Timeout:
        return scrub(f"the MLflow server at {uri} did not answer within {timeout:.0f} s; check it, or {LOCAL_STORE}")
    except requests.exceptions.RequestException as e:
        reason = "cannot connect" if isinstance(e, requests.exceptions.ConnectionError) else type(e).__name__
        return scrub(f"no MLflow server answers at {uri} ({reason}); start one "
                     f"(mlflow server --host HOST --port PORT), or {LOCAL_STORE}")
    return None
