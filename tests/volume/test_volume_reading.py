"""read_datasets / gc_paused (dicom/reading.py): the same datasets as pydicom.dcmread,
the same exceptions, and the garbage collector's state restored as it was."""

from __future__ import annotations

import gc

import pydicom
import pytest
from pydicom.errors import InvalidDicomError

from oncohybrid.dicom.reading import gc_paused, read_datasets
from oncohybrid.dicom.volume import load_series


def _content(ds):
    return (ds.filename, ds.preamble, [(e.tag, e.VR, e.value) for e in ds.file_meta],
            [(e.tag, e.VR, e.value) for e in ds])


def test_read_datasets_equals_dcmread(tmp_path, series_factory, series_writer):
    paths = series_writer(series_factory(n=5), tmp_path / "s")
    got = read_datasets(paths)
    ref = [pydicom.dcmread(p) for p in paths]
    assert [_content(a) for a in got] == [_content(b) for b in ref]
    assert gc.isenabled()


def test_read_datasets_raises_as_dcmread_and_restores_the_collector(tmp_path,
                                                                    series_factory,
                                                                    series_writer):
    paths = series_writer(series_factory(n=2), tmp_path / "s")
    bad = tmp_path / "readme.txt"
    bad.write_text("not DICOM")
    with pytest.raises(InvalidDicomError):
        read_datasets([paths[0], bad])
    assert gc.isenabled()
    with pytest.raises(FileNotFoundError):
        read_datasets([tmp_path / "missing.dcm"])
    assert gc.isenabled()


def test_gc_paused_keeps_a_disabled_collector_disabled(tmp_path, series_factory,
                                                       series_writer):
    paths = series_writer(series_factory(n=3), tmp_path / "s")
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
        load_series(paths)
        assert not gc.isenabled()
    finally:
        gc.enable()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    load_series(paths)
    load_series(tmp_path / "s")
    assert gc.isenabled()
