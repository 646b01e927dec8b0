"""Pure rendering (windowing, maps, fusion, planes, MIP, contours) and the viewer service."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image

from oncohybrid.imaging import render


def test_window_follows_the_linear_voi_lut_of_ps3_3():
    # PS3.3 C.11.2.1.2.1: y = ((x - (c - 0.5)) / (w - 1) + 0.5) * (ymax - ymin) + ymin
    c, w = 40.0, 400.0
    x = np.array([-300.0, -160.0, -100.0, 0.0, 39.5, 100.0, 239.0, 500.0])
    y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0
    expected = np.clip(np.rint(y), 0, 255)
    assert render.window_ct(x, c, w).tolist() == expected.astype(int).tolist()


def test_presets_are_the_clinical_windows():
    assert render.CT_PRESETS["lung"] == (-600.0, 1500.0)
    assert render.CT_PRESETS["soft"] == (40.0, 400.0)


def test_inverted_grey_is_black_at_high_uptake():
    lut = render.colormap_lut("grey_inv")
    idx = render.scale_pet(np.array([0.0, 10.0]), 0.0, 5.0)
    assert render.apply_lut(idx, lut).tolist() == [[255, 255, 255], [0, 0, 0]]
    with pytest.raises(ValueError):
        render.colormap_lut("nope")


def test_planes_put_the_head_at_the_top():
    vol = np.arange(4 * 3 * 2).reshape(4, 3, 2)  # (slice, row, column), slice 0 = feet
    assert np.array_equal(render.plane(vol, "axial", 1), vol[1])
    cor = render.plane(vol, "coronal", 2)
    assert cor.shape == (4, 2) and cor[0, 0] == vol[3, 2, 0]
    sag = render.plane(vol, "sagittal", 1)
    assert sag.shape == (4, 3) and sag[-1, 0] == vol[0, 0, 1]
    with pytest.raises(IndexError):
        render.plane(vol, "axial", 4)


def test_mip_projects_a_hot_voxel_where_it_lies():
    vol = np.zeros((5, 21, 21), np.float32)
    vol[1, 10, 15] = 9.0  # 5 columns left of the rotation centre (column 10)
    front = render.mip(vol, 0.0)
    assert front.shape == (5, 21)
    assert front[3, 15] == 9.0  # row 3 = slice 1 flipped (head at top)
    # A quarter turn about the long axis moves it onto the central column.
    side = render.mip(vol, 90.0)
    assert int(np.argmax(side[3])) == 10 and side[3].max() > 4.0


def test_contour_is_the_outline_of_the_region():
    lab = np.zeros((10, 10), np.uint8)
    lab[2:7, 3:8] = 1  # 5 × 5 square
    rgb = np.zeros((10, 10, 3), np.uint8)
    out = render.draw_contours(rgb, lab, {1: (0, 255, 0)})
    drawn = out[..., 1] == 255
    assert drawn.sum() == 16  # perimeter of a 5 × 5 square
    assert not drawn[4, 5]  # interior untouched


def test_fusion_keeps_ct_where_pet_is_zero():
    ct = np.full((2, 2, 3), 100, np.uint8)
    pet = np.full((2, 2, 3), 250, np.uint8)
    idx = np.array([[0, 255], [0, 255]], np.uint8)
    out = render.fuse(ct, pet, idx, alpha=0.6)
    assert out[0, 0].tolist() == [100, 100, 100]
    assert out[0, 1].tolist() == [190, 190, 190]  # 100·0.4 + 250·0.6


@pytest.fixture(scope="module")
def vols(web_ws):
    from oncohybrid.services import viewer

    uid = web_ws.patient["timepoints"][0]["study_uid"]
    return viewer.study_volumes(uid, web_ws.settings)


def test_png_tile_decodes_to_the_rendered_plane(vols):
    from oncohybrid.services import viewer

    rgb = viewer.render_plane_rgb(vols, "coronal", 100, mode="fused", suv_max=6)
    png = viewer.render_plane_png(vols, "coronal", 100, mode="fused", suv_max=6)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), rgb)
    assert rgb.shape == (vols.shape[0], vols.shape[2], 3)


def test_volumes_are_cached_per_series(web_ws, vols):
    from oncohybrid.services import viewer

    uid = web_ws.patient["timepoints"][0]["study_uid"]
    assert viewer.study_volumes(uid, web_ws.settings) is vols
    assert vols.pet_on_grid.shape == vols.shape  # PET resampled to the CT grid once


def test_probe_reads_hu_from_the_ct_file(web_ws, vols):
    from oncohybrid.services import viewer

    d = viewer.probe(vols, "axial", 40, 0.47, 0.53)
    lps = np.array(d["lps_mm"])
    tp0 = web_ws.patient["timepoints"][0]
    files = list((web_ws.data_dir / tp0["ct_dir"]).glob("*.dcm"))
    ds = min((pydicom.dcmread(f) for f in files),
             key=lambda x: abs(float(x.ImagePositionPatient[2]) - lps[2]))
    off = lps - np.array(ds.ImagePositionPatient, float)
    row = int(round(off[1] / float(ds.PixelSpacing[0])))
    col = int(round(off[0] / float(ds.PixelSpacing[1])))
    hu = float(ds.pixel_array[row, col]) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert d["hu"] == pytest.approx(hu, abs=0.05)


def test_region_names_are_written_in_the_region_colour():
    lab = np.zeros((40, 60), np.uint8)
    lab[10:20, 5:15] = 1
    out = render.label_regions(np.zeros((40, 60, 3), np.uint8), lab, {1: "L1"}, {1: (0, 255, 0)})
    text = (out[..., 1] > 128) & (out[..., 0] < 60)
    cols = np.nonzero(text)[1]
    assert text.sum() > 5 and cols.min() >= 15  # right of the region's box
