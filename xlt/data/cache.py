"""On-disk dataset cache shared by the jobs of a sweep."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

import datasets


def disk_cached(path: Path, make: Callable[[], datasets.Dataset]) -> datasets.Dataset:
    """Load `path`, or build it with `make` and store it there first.

    Written to a temporary name and renamed, so a parallel job never reads a half-written
    entry; when two jobs build the same entry, the first rename wins.
    """
    if not path.is_dir():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        built = make()
        quiet = not datasets.are_progress_bars_disabled()
        if quiet:  # "Saving the dataset" bars for a second's work: storage, not progress
            datasets.disable_progress_bars()
        try:
            built.save_to_disk(str(tmp))
        finally:
            if quiet:
                datasets.enable_progress_bars()
        try:
            os.rename(tmp, path)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return datasets.load_from_disk(str(path))
