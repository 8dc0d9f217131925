"""What reproducing a run needs beside its config: code version, package versions, seed.

Light on purpose (no torch, no transformers): `xlt reproduce` reads it before starting a job.
"""
from __future__ import annotations

import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Dict, Optional

from xlt.config import XltConfig
from xlt.core import tags

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("xlt", "torch", "transformers", "accelerate", "datasets", "tokenizers", "huggingface_hub",
            "numpy", "hydra-core", "omegaconf", "mlflow")


def git_state() -> Dict[str, str]:
    """{'xlt.git_commit': ..., 'xlt.git_dirty': 'True'|'False'}, or {} outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        return {tags.GIT_COMMIT: git("rev-parse", "HEAD"),
                tags.GIT_DIRTY: str(bool(git("status", "--porcelain", "--untracked-files=no")))}
    except (OSError, subprocess.SubprocessError):
        return {}


def installed_versions() -> Dict[str, str]:
    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return {name: installed(name) for name in PACKAGES}


def environment(cfg: XltConfig, loaded: Dict[str, Optional[str]]) -> Dict[str, object]:
    """`loaded`: what the model and data resolved to (`model`, `data`: repo@commit or a content hash)."""
    git = git_state()
    return {"seed": cfg.train.seed, "git_commit": git.get(tags.GIT_COMMIT, "unknown"),
            "git_dirty": git.get(tags.GIT_DIRTY, "unknown"), "python": sys.version.split()[0],
            "platform": platform.platform(), "loaded": loaded, "packages": installed_versions()}
