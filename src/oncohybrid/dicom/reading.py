"""Reading many DICOM files at once: the files of a series, kept as datasets.

A series read is ~80 small objects per file (elements, tags, values) that all survive:
the cyclic garbage collector's generation passes rescan them again and again while the
list grows (about a quarter of the reading CPU time of a 281-slice CT, #11). Nothing of
it is cyclic garbage, so the collector is paused while reading (and restored as it was);
what is read does not change.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pydicom
from pydicom.dataset import FileDataset

__all__ = ["gc_paused", "read_datasets"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector inside the block; re-enable it after only when
    it was enabled before (a caller that disabled it keeps it disabled). Threads: the
    collector is process-wide; a block ending re-enables it for all, never the reverse."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_datasets(paths: Iterable[str | os.PathLike[str]]) -> list[FileDataset]:
    """``[pydicom.dcmread(p) for p in paths]`` (same datasets, same exceptions) with the
    garbage collector paused (module docstring).

    Example:
        >>> pet = read_datasets(tp.pet_files)  # doctest: +SKIP
    """
    with gc_paused():
        return [pydicom.dcmread(p) for p in paths]
