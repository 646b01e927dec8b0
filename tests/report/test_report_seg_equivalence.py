"""The faster SEG construction (#11) writes the same SEG as before: segment-major mask
stack and memoised IOD lookups change no attribute except the generated UIDs and times."""

from __future__ import annotations

import dataclasses
import io

import highdicom as hd
import highdicom._standard_utils as su
import numpy as np
import pydicom
import pytest

from oncohybrid.report import seg as seg_module
from oncohybrid.report.data import LesionInfo
from oncohybrid.report.seg import build_lesion_seg

#: Generated per call: UIDs, dates and times (the rest must be identical), and the file
#: meta group length, which counts the bytes of the generated MediaStorageSOPInstanceUID
#: (random UIDs differ in length by a digit or two: 210 vs 212 in one CI run).
VOLATILE = {"SOPInstanceUID", "SeriesInstanceUID", "DimensionOrganizationUID",
            "MediaStorageSOPInstanceUID", "FileMetaInformationGroupLength", "ContentDate",
            "ContentTime", "SeriesDate", "SeriesTime", "InstanceCreationDate",
            "InstanceCreationTime", "ContributionDateTime"}


def _normalised(ds: pydicom.Dataset) -> list:
    out = []
    for el in ds:
        if el.VR == "SQ":
            out.append((el.tag, [_normalised(item) for item in el.value]))
        elif el.keyword in VOLATILE:
            out.append((el.tag, "<volatile>"))
        else:
            out.append((el.tag, el.VR, el.value))
    return out


def _written(ds: pydicom.Dataset) -> list:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    back = pydicom.dcmread(io.BytesIO(buf.getvalue()))
    return _normalised(back.file_meta) + _normalised(back)


def _old_construction(monkeypatch):
    """What build_lesion_seg did before: a slice-major (…, segment) C-order stack and
    highdicom's own IOD lookup (no memo)."""
    scan = getattr(su.is_attribute_in_iod, "_oncohybrid_scan", su.is_attribute_in_iod)
    original = hd.seg.Segmentation

    def segmentation(*args, pixel_array, **kwargs):
        assert pixel_array.shape[-1] == len(kwargs["segment_descriptions"])
        return original(*args, pixel_array=np.ascontiguousarray(pixel_array), **kwargs)

    monkeypatch.setattr(su, "is_attribute_in_iod", scan)
    monkeypatch.setattr(seg_module, "_memoise_iod_lookups", lambda: None)
    monkeypatch.setattr(hd.seg, "Segmentation", segmentation)


def _cases(shape: tuple[int, int, int]) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(2024)
    z, y, x = shape

    def blob(c, r):
        zz, yy, xx = np.ogrid[:z, :y, :x]
        return (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r * r

    single = np.zeros(shape, bool)
    single[z // 2, y // 3, x // 4] = True
    corner = np.zeros(shape, bool)
    corner[0, 0, 0] = corner[-1, -1, -1] = True
    border = np.zeros(shape, bool)
    border[:, 0, :] = True  # touches every slice and two edges
    border[-1] = True
    return {
        "single voxel": [single],
        "corners": [corner, single],
        "touching borders": [border, blob((z // 2, y // 2, x // 2), 3)],
        "overlapping": [blob((z // 2, y // 2, x // 2), 4), blob((z // 2, y // 2 + 2, x // 2), 4),
                        single],
        "random sparse": [rng.random(shape) < p for p in (0.001, 0.01, 0.05)],
        "random dense": [rng.random(shape) < 0.5, rng.random(shape) < 0.3],
        "with an empty mask": [np.zeros(shape, bool), blob((1, 2, 3), 2),
                               np.zeros(shape, bool)],
        "uint8 and int masks": [blob((z // 3, y // 2, x // 2), 3).astype(np.uint8) * 7,
                                blob((z // 2, y // 3, x // 3), 2).astype(np.int64)],
    }


@pytest.mark.parametrize("case", list(_cases((2, 2, 2))))
@pytest.mark.parametrize("label_with_site", [True, False])
def test_same_seg_as_the_old_construction(data_p0, monkeypatch, case, label_with_site):
    tp = data_p0.timepoints[0]
    shape = tuple(tp.images.pet_suv.spatial_shape)
    masks = _cases(shape)[case]
    sites = ["liver", None, "lymph node"]
    infos = [LesionInfo(lesion_id=f"L{k + 1}", tracking_uid=hd.UID(), site=sites[k % 3])
             for k in range(len(masks))]
    images = dataclasses.replace(
        tp.images, lesion_masks={les.lesion_id: m for les, m in zip(infos, masks, strict=True)})
    kwargs = {"label_with_site": label_with_site, "automatic": not label_with_site}
    new = build_lesion_seg(images, infos, **kwargs)
    with monkeypatch.context() as m:
        _old_construction(m)
        old = build_lesion_seg(images, infos, **kwargs)
    assert _written(new) == _written(old)
    assert new.PixelData == old.PixelData
    assert int(new.NumberOfFrames) == int(old.NumberOfFrames)


def test_memoised_iod_lookup_answers_as_the_scan():
    seg_module._memoise_iod_lookups()
    seg_module._memoise_iod_lookups()  # idempotent: one wrapper
    memo = su.is_attribute_in_iod
    scan = memo._oncohybrid_scan
    assert not getattr(scan, "_oncohybrid_memo", False)
    sop_classes = ["1.2.840.10008.5.1.4.1.1.128", "1.2.840.10008.5.1.4.1.1.2",
                   "1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.88.34",
                   "1.2.840.10008.5.1.4.1.1.2.1", pydicom.uid.UID("1.2.840.10008.5.1.4.1.1.4")]
    keywords = ["NumberOfFrames", "PixelData", "FloatPixelData", "ContentDate",
                "ImagePositionPatient", "SegmentSequence", "NoSuchKeyword"]
    for sop in sop_classes:
        for kw in keywords:
            for excl in (None, ["IconImageSequence"], ("SharedFunctionalGroupsSequence",)):
                for _ in range(2):  # the second answer comes from the memo
                    assert memo(kw, sop, excl) == scan(kw, sop, excl), (sop, kw, excl)
    for _ in range(2):  # errors are not memoised
        with pytest.raises(KeyError):
            memo("NumberOfFrames", "1.2.3.4")
