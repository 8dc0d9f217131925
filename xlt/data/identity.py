"""What a job's local inputs are, by content: the JSONL files and the local model's files it reads.

`config_hash` sees a local path only as a name. A file replaced at the same path must make a new
job, as a new hub commit does, or a rerun skips it as finished and reports the old numbers. Each
file's digest is cached by (path, size, mtime) in `<output_dir>/cache/content_hashes.json`, so a
rerun rereads none of an unchanged checkpoint's gigabytes.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from xlt.config import XltConfig, config_hash
from xlt.protocols import local_files

CACHE_FILE = "content_hashes.json"
# A local model's files that decide what it computes (a README or a log does not).
MODEL_FILES = ("*.json", "*.safetensors", "*.bin", "*.model", "*.txt", "*.tiktoken")


def _digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def content_hash(paths: Iterable[Path], cache_dir: Optional[Path] = None) -> str:
    """One sha256 over the files' contents, in order; with `cache_dir`, each file's digest is
    reused while its size and mtime are unchanged."""
    paths = [Path(p).resolve() for p in paths]
    cache_path = cache_dir / CACHE_FILE if cache_dir else None
    cache = _read_cache(cache_path)
    digest, fresh = hashlib.sha256(), False
    for path in paths:
        stat = path.stat()
        key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
        if key not in cache:
            cache[key], fresh = _digest(path), True
        digest.update(bytes.fromhex(cache[key]))
    if cache_path is not None and fresh:
        _write_cache(cache_path, cache)
    return "sha256:" + digest.hexdigest()


def _read_cache(path: Optional[Path]) -> Dict[str, str]:
    try:
        return json.loads(path.read_text()) if path else {}
    except (OSError, ValueError):  # absent, or cut short by a full disk: digests are recomputed
        return {}


def _write_cache(path: Path, cache: Dict[str, str]) -> None:
    """Written whole and renamed: parallel jobs never read half a file (one's entries may be lost)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, path)
    except OSError:  # a read-only cache: the hashes are only slower next time
        pass


def model_files(path: Path) -> List[Path]:
    """A local checkpoint's files that decide what it computes: config, weights, tokenizer, in its
    sub-folders too (sentence-transformers' 1_Pooling/config.json decides the pooling); hidden
    folders (.git, .cache) left out."""
    found = {p for pattern in MODEL_FILES for p in path.rglob(pattern) if p.is_file()}
    return sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(path).parts))


def local_inputs(cfg: XltConfig) -> Dict[str, List[Path]]:
    """The local files a job reads, by part: `data` (JSONL) and `model` (a local checkpoint)."""
    found = {}
    if cfg.data.source == "jsonl":
        found["data"] = local_files(cfg)
    if cfg.model.source == "local":
        found["model"] = model_files(Path(cfg.model.path).expanduser())
    return found


def inputs_identity(cfg: XltConfig) -> Dict[str, str]:
    """part -> the content hash of its local files (logged as `data.commit`, `model.commit`)."""
    return {part: content_hash(paths, cfg.cache_dir) for part, paths in local_inputs(cfg).items()}


def job_hash(cfg: XltConfig, identity: Optional[Dict[str, str]] = None) -> str:
    """The job's identity in the store (the `xlt.config_hash` tag): its config and, where it
    reads local files, their contents (`identity`: `inputs_identity(cfg)`, if known)."""
    identity = inputs_identity(cfg) if identity is None else identity
    if not identity:
        return config_hash(cfg)
    both = json.dumps([config_hash(cfg), identity], sort_keys=True)
    return hashlib.sha256(both.encode()).hexdigest()[:16]
