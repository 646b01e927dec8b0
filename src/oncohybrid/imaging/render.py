"""Display rendering of CT and PET planes: windowing, colour maps, fusion, MIP, contours.

Pure functions from arrays to ``uint8`` RGB images (``(rows, columns, 3)``) for the
reading-room viewer; nothing here knows about files, databases or HTTP.

- CT grey-scale windowing follows the linear VOI LUT function of PS3.3 C.11.2.1.2.1
  (window centre/width in Hounsfield units) with the usual clinical presets.
- PET is shown in SUV on a fixed scale ``[suv_min, suv_max]`` (PERCIST-style reading
  uses a fixed upper SUV, not per-slice auto-scaling, so that slices stay comparable).
- Fusion is alpha blending of the PET colour image over the grey CT (the common
  PET/CT display; see e.g. Townsend, J Nucl Med 2008;49:938).
- The rotating MIP projects the maximum along the viewing ray after rotating the volume
  about the patient's long axis (Wallis et al., IEEE TMI 1989;8:297).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

__all__ = [
    "CT_PRESETS",
    "PET_COLORMAPS",
    "colormap_lut",
    "window_ct",
    "scale_pet",
    "apply_lut",
    "grey_rgb",
    "fuse",
    "mip",
    "draw_contours",
    "plane",
    "label_regions",
]

#: CT window presets as (centre HU, width HU); widely used clinical defaults.
CT_PRESETS: dict[str, tuple[float, float]] = {
    "soft": (40.0, 400.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "liver": (60.0, 160.0),
}

#: PET colour maps offered by the viewer; ``grey_inv`` is the classic inverted grey
#: (high uptake black on white) used for PET reading and MIPs.
PET_COLORMAPS = ("grey_inv", "grey", "hot", "inferno", "rainbow")


@lru_cache(maxsize=16)
def colormap_lut(name: str) -> np.ndarray:
    """A 256×3 ``uint8`` lookup table for ``name`` (one of :data:`PET_COLORMAPS`).

    >>> colormap_lut("grey")[255].tolist()
    [255, 255, 255]
    """
    ramp = np.linspace(0.0, 1.0, 256)
    if name == "grey":
        rgb = np.stack([ramp] * 3, axis=1)
    elif name == "grey_inv":
        rgb = np.stack([1.0 - ramp] * 3, axis=1)
    else:
        # matplotlib holds the reference definitions of these maps; imported here only.
        from matplotlib import colormaps

        mpl_name = {"hot": "hot", "inferno": "inferno", "rainbow": "turbo"}.get(name)
        if mpl_name is None:
            raise ValueError(f"colour map must be one of {', '.join(PET_COLORMAPS)}, got {name!r}")
        rgb = colormaps[mpl_name](ramp)[:, :3]
    return np.round(rgb * 255.0).astype(np.uint8)


def window_ct(hu: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Linear VOI window of PS3.3 C.11.2.1.2.1 to ``uint8`` grey levels 0–255.

    >>> window_ct(np.array([-1000.0, 40.0, 1000.0]), 40, 400).tolist()
    [0, 128, 255]
    """
    if width < 1:
        raise ValueError(f"window width must be ≥ 1 HU, got {width}")
    lo = centre - 0.5 - (width - 1) / 2
    scaled = (np.asarray(hu, dtype=np.float32) - lo) * (255.0 / (width - 1))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def scale_pet(suv: np.ndarray, suv_min: float, suv_max: float) -> np.ndarray:
    """SUV mapped linearly from ``[suv_min, suv_max]`` to ``uint8`` 0–255 (clipped).

    >>> scale_pet(np.array([0.0, 2.5, 5.0, 9.0]), 0, 5).tolist()
    [0, 128, 255, 255]
    """
    if suv_max <= suv_min:
        raise ValueError(f"SUV scale must have max > min, got [{suv_min}, {suv_max}]")
    scaled = (np.asarray(suv, dtype=np.float32) - suv_min) * (255.0 / (suv_max - suv_min))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def apply_lut(index: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``uint8`` indices → RGB through a 256×3 table."""
    return lut[index]


def grey_rgb(grey: np.ndarray) -> np.ndarray:
    """``uint8`` grey image → RGB by repeating the channel."""
    return np.repeat(grey[..., None], 3, axis=2)


def fuse(ct_rgb: np.ndarray, pet_rgb: np.ndarray, pet_index: np.ndarray,
         alpha: float = 0.6, ramp: float = 0.35) -> np.ndarray:
    """Blend PET colour over CT. The PET opacity rises linearly from 0 to ``alpha`` over
    the lowest ``ramp`` fraction of the PET scale, so that background activity does not
    veil the anatomy while uptake above it shows at full fusion opacity.

    ``pet_index`` is the scaled PET (0–255) that produced ``pet_rgb``.

    >>> ct = np.zeros((1, 2, 3), np.uint8); pet = np.full((1, 2, 3), 200, np.uint8)
    >>> fuse(ct, pet, np.array([[0, 255]], np.uint8), alpha=0.5)[0, :, 0].tolist()
    [0, 100]
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"fusion alpha must be within [0, 1], got {alpha}")
    if not 0.0 < ramp <= 1.0:
        raise ValueError(f"opacity ramp must be within (0, 1], got {ramp}")
    a = np.clip(pet_index.astype(np.float32) / np.float32(255.0 * ramp), 0.0, 1.0)
    a = (a * np.float32(alpha))[..., None]
    out = ct_rgb.astype(np.float32) * (1.0 - a) + pet_rgb.astype(np.float32) * a
    return np.rint(out).astype(np.uint8)


def plane(volume: np.ndarray, orientation: str, index: int) -> np.ndarray:
    """One display plane of a ``(slice, row, column)`` axial volume.

    ``axial`` is ``volume[index]``; ``coronal`` (``volume[:, index, :]``) and
    ``sagittal`` (``volume[:, :, index]``) are flipped so that the head is at the top
    (slice 0 is the most inferior slice, see :mod:`oncohybrid.dicom.volume`).
    Raises :class:`IndexError` for an index outside the volume.
    """
    axis = {"axial": 0, "coronal": 1, "sagittal": 2}.get(orientation)
    if axis is None:
        raise ValueError(f"orientation must be axial, coronal or sagittal, got {orientation!r}")
    n = volume.shape[axis]
    if not 0 <= index < n:
        raise IndexError(f"{orientation} index {index} outside 0..{n - 1}")
    if axis == 0:
        return volume[index]
    if axis == 1:
        return volume[::-1, index, :]
    return volume[::-1, :, index]


def mip(volume: np.ndarray, angle_deg: float) -> np.ndarray:
    """Maximum-intensity projection seen from the front after rotating ``angle_deg``
    about the patient's long (slice) axis; rows are slices with the head at the top.

    Linear interpolation of the rotation (``order=1``) keeps the projected maxima close
    to the voxel maxima. Returns ``(slices, columns)`` in the volume's units.
    """
    vol = np.asarray(volume, dtype=np.float32)
    if angle_deg % 360:
        vol = ndimage.rotate(vol, angle_deg, axes=(1, 2), reshape=False, order=1,
                             mode="constant", cval=0.0, prefilter=False)
    # Axis 1 is the row axis (anterior → posterior for axial images): project along it.
    return vol.max(axis=1)[::-1]


def draw_contours(rgb: np.ndarray, labels: np.ndarray,
                  colours: dict[int, tuple[int, int, int]]) -> np.ndarray:
    """Draw the 1-pixel outline of each labelled region of a 2-D ``labels`` image.

    The outline is the set of voxels of a label with a 4-neighbour of another value.
    Returns a new RGB image; labels without a colour are drawn in yellow.
    """
    lab = np.asarray(labels)
    if lab.shape != rgb.shape[:2]:
        raise ValueError(f"label image {lab.shape} does not match the RGB image {rgb.shape[:2]}")
    if not lab.any():
        return rgb
    out = rgb.copy()
    padded = np.pad(lab, 1, mode="edge")
    edge = (
        (padded[1:-1, 1:-1] != padded[:-2, 1:-1])
        | (padded[1:-1, 1:-1] != padded[2:, 1:-1])
        | (padded[1:-1, 1:-1] != padded[1:-1, :-2])
        | (padded[1:-1, 1:-1] != padded[1:-1, 2:])
    ) & (lab > 0)
    for value in np.unique(lab[edge]):
        out[edge & (lab == value)] = colours.get(int(value), (255, 221, 0))
    return out


@lru_cache(maxsize=1)
def _label_font():  # noqa: ANN202 - a Pillow font object
    # Loading the default font parses it each time (Pillow ≥ 10.1): load it once.
    from PIL import ImageFont

    return ImageFont.load_default(size=13)


def label_regions(rgb: np.ndarray, labels: np.ndarray, names: dict[int, str],
                  colours: dict[int, tuple[int, int, int]]) -> np.ndarray:
    """Write each region's name beside it (right of its bounding box, top-aligned),
    in Pillow's built-in bitmap font, clamped inside the image."""
    from PIL import Image, ImageDraw

    present = [int(v) for v in np.unique(labels) if v and int(v) in names]
    if not present:
        return rgb
    img = Image.fromarray(np.ascontiguousarray(rgb))
    draw = ImageDraw.Draw(img)
    font = _label_font()
    h, w = labels.shape
    for value in present:
        rows, cols = np.nonzero(labels == value)
        text = names[value]
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        x = min(int(cols.max()) + 3, w - (right - left) - 1)
        y = max(0, min(int(rows.min()) - (bottom - top) // 2, h - (bottom - top) - 1))
        draw.text((x + 1, y + 1), text, fill=(0, 0, 0), font=font)
        draw.text((x, y), text, fill=colours.get(value, (255, 221, 0)), font=font)
    return np.asarray(img)
