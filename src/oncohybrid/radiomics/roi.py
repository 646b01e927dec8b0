"""The region of interest as the feature families receive it (IBSI 1 §2, "image processing").

Every feature family works on one :class:`Roi` after preprocessing (interpolation, mask
re-segmentation and discretisation are done before; see :mod:`.preprocess`). Arrays are in
highdicom's axis order ``(z, y, x)`` = (slice, row, column); ``spacing_mm`` is in the same
order. Texture families receive discretised grey levels as an integer array where 0 means
"outside the intensity mask" and 1..``n_levels`` are the grey levels (IBSI 1 §2.7).

Feature results are plain ``dict[str, float]`` keyed by the IBSI identifier: the 4-character
id for non-texture features (``"Q4LE"``), ``"ID/AGG"`` for texture features with the IBSI
aggregation identifier (GLCM, GLRLM: ``BTW3`` 2D averaged, ``SUJT`` 2D slice-merged, ``JJUI``
2.5D direction-merged, ``ZW7Z`` 2.5D merged, ``ITBB`` 3D averaged, ``IAZD`` 3D merged; GLSZM,
GLDZM, NGTDM, NGLDM: ``8QNN`` 2D, ``62GR`` 2.5D, ``KOBO`` 3D), and parametrised
intensity-volume features as ``"BC2M/V10"``, ``"GBPN/I10"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: IBSI texture-aggregation identifiers (IBSI 1 §3.6.2 … §3.11, Table 3.1)
AGG_2D_AVG, AGG_2D_SMRG, AGG_25D_DMRG, AGG_25D_MRG, AGG_3D_AVG, AGG_3D_MRG = (
    "BTW3", "SUJT", "JJUI", "ZW7Z", "ITBB", "IAZD")
AGG_2D, AGG_25D, AGG_3D = "8QNN", "62GR", "KOBO"


@dataclass(frozen=True)
class Roi:
    """A preprocessed image with its two masks (IBSI 1 §2.4: morphological and intensity).

    ``image``: float64 intensities, shape (z, y, x); ``morph_mask`` and ``int_mask``: bool,
    same shape (``int_mask`` is the morphological mask after re-segmentation and outlier
    filtering); ``spacing_mm``: voxel spacing (z, y, x). ``levels`` (optional): discretised
    grey levels, int, 0 outside ``int_mask``, 1..``n_levels`` inside.
    """

    image: np.ndarray
    morph_mask: np.ndarray
    int_mask: np.ndarray
    spacing_mm: tuple[float, float, float]
    levels: np.ndarray | None = None
    n_levels: int | None = None

    def __post_init__(self) -> None:
        shape = np.shape(self.image)
        if len(shape) != 3:
            raise ValueError(f"Roi.image must be 3-D (z, y, x), got shape {shape}")
        for name in ("morph_mask", "int_mask"):
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f"Roi.{name} shape {np.shape(getattr(self, name))} differs "
                                 f"from the image's {shape}")
        if self.levels is not None and np.shape(self.levels) != shape:
            raise ValueError(f"Roi.levels shape {np.shape(self.levels)} differs from {shape}")
