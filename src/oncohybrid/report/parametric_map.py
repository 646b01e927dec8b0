"""ADC maps as DICOM Parametric Map objects (PS3.3 A.75) with highdicom.

The map is stored as 32-bit float pixels (7FE0,0008) *Float Pixel Data* in µm²/s
(10⁻⁶ mm²/s, the unit vendors use for ADC maps), and the (0040,9096) *Real World Value
Mapping Sequence* (PS3.3 C.7.6.16.2.11) names the quantity, DCM 113041 "Apparent
Diffusion Coefficient", and its unit, UCUM ``um2/s``, with slope 1 and intercept 0.
Voxels without a fitted ADC (background, fewer than two usable b-values) are stored as 0.
Geometry (plane positions, orientation, spacing) comes from the volume's LPS affine;
patient and study from the source DWI images.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from oncohybrid import __version__

__all__ = ["ADC_UNIT", "adc_parametric_map"]

#: UCUM µm²/s = 10⁻⁶ mm²/s.
ADC_UNIT = hd.sr.CodedConcept(value="um2/s", scheme_designator="UCUM", meaning="um2/s")


def adc_parametric_map(adc_um2_s: hd.Volume, source_images: Sequence[Dataset], *,
                       series_number: int = 901, series_description: str = "ADC",
                       window: tuple[float, float] = (1500.0, 3000.0),
                       explanation: str = "ADC, mono-exponential fit") -> hd.pm.ParametricMap:
    """Parametric Map of an ADC volume in µm²/s, referencing ``source_images``.

    ``window`` is (centre, width) in µm²/s. The array may hold NaN (not fitted): stored 0.

    Example:
        >>> pm = adc_parametric_map(adc_volume, dwi_b0_datasets)  # doctest: +SKIP
        >>> pm.save_as("ADC.dcm")  # doctest: +SKIP
    """
    if not source_images:
        raise ValueError("a Parametric Map needs the source DWI images")
    array = np.nan_to_num(np.asarray(adc_um2_s.array, dtype=np.float32), nan=0.0,
                          posinf=0.0, neginf=0.0)
    volume = adc_um2_s.with_array(array)
    low, high = float(array.min()), float(array.max())
    if high <= low:
        high = low + 1.0
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="ADC",
        lut_explanation=explanation,
        unit=ADC_UNIT,
        value_range=(low, high),
        slope=1.0,
        intercept=0.0,
        quantity_definition=codes.DCM.ApparentDiffusionCoefficient,
    )
    ref = source_images[0]
    pm = hd.pm.ParametricMap(
        source_images=list(source_images),
        pixel_array=volume,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="oncohybrid",
        manufacturer_model_name="oncohybrid",
        software_versions=__version__,
        device_serial_number="0",
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=window[0],
                                                         window_width=window[1])],
        content_label="ADC",
        content_description=explanation[:64],
    )
    pm.SeriesDescription = series_description
    # (0020,0060) Laterality, Type 2C in the General Series module: copied from the source,
    # else sent empty (dciodvfy cannot evaluate the paired-structure condition).
    pm.Laterality = str(ref.get("Laterality", "") or "")
    if "FrameOfReferenceUID" in ref and adc_um2_s.frame_of_reference_uid is None:
        pm.FrameOfReferenceUID = ref.FrameOfReferenceUID
    return pm
