"""SUV scaling factors for a DICOM PET series, vendor-exact and with provenance.

The factor returned for a slice/frame multiplies its *rescaled* pixel value
``stored × (0028,1053) Rescale Slope + (0028,1052) Rescale Intercept`` (PS3.3 C.8.9.4.1.3,
applied per slice by :func:`oncohybrid.dicom.volume.load_series`) to give SUV:

========  =====================================================================================
Units     factor for normalisation X (size_X in g, or cm² for BSA)
========  =====================================================================================
BQML      ``size_X / D_ref`` with ``D_ref = D_adm · 2^(−(t_ref − t_adm)/T½)``
CNTS      Philips (7053,xx00) *SUV Scale Factor* (× size_X / W), else (7053,xx09) *Activity
          Concentration Scale Factor* × ``size_X / D_ref``; creator "Philips PET Private Group"
GML       SUV already, of the flavour in (0054,1006) *SUV Type* T (absent ⇒ BW): ``size_X/size_T``
CM2ML     SUVbsa already: ``size_X / BSA_cm²``
CPS       with DCAL in (0028,0051) *Corrected Image*: ``1/voxel_ml``, else × (0054,1322) *Dose
          Calibration Factor* ``/voxel_ml``; then as BQML (IBSI SUV manual)
========  =====================================================================================

(0054,1102) *Decay Correction*: ``ADMIN`` ⇒ ``D_ref = D_adm``; ``NONE`` ⇒ per frame
``size_X/D_adm · λT/(1 − e^(−λT)) · e^(λ(t_acq − t_adm))`` (average count rate within a frame
of duration T, (0018,1242) *Actual Frame Duration*); ``START`` ⇒ the reference time is chosen
by the procedure of the project's PET quantification notes (§2.3, QIBA + IBSI + vendor
counter-examples), see
:func:`oncohybrid.dicom.suv.decisions._choose_start_reference`. Every candidate time, the
path chosen, all warnings and user overrides are recorded in :attr:`SUVScaling.provenance`.

References: DICOM PS3.3 C.8.9.1 (PET Series), C.8.9.2 (PET Isotope), C.8.9.4 (PET Image),
C.8.22 (Enhanced PET); QIBA "SUV vendor-neutral pseudo-code" (2013); IBSI SUV computation
manual (Vacha et al.) and its digital reference objects.

Example:
    >>> scaling = compute_suv(read_series("PT/"))          # doctest: +SKIP
    >>> scaling.factor(Normalisation.LBM_JANMA)            # doctest: +SKIP
    0.000512...
    >>> volume, scaling = suv_volume("PT/", normalisation=Normalisation.LBM_JANMA)  # doctest: +SKIP

Modules, by responsibility: :mod:`~oncohybrid.dicom.suv.headers` reads the header values
strictly; :mod:`~oncohybrid.dicom.suv.decisions` decides which reference time, dose,
half-life, patient size and units apply (vendor quirks and plausibility checks included);
:mod:`~oncohybrid.dicom.suv.factors` does the factor arithmetic;
:mod:`~oncohybrid.dicom.suv.compute` runs them in order (:func:`compute_suv`);
:mod:`~oncohybrid.dicom.suv.volume_scaling` applies the factors to a loaded volume
(:func:`suv_volume`); :mod:`~oncohybrid.dicom.suv.model` holds the public types. Import
from ``oncohybrid.dicom.suv``.
"""

from oncohybrid.dicom.suv.compute import compute_suv
from oncohybrid.dicom.suv.decisions import (
    DOSE_RANGE_BQ,
    HALF_LIFE_RANGE_S,
    HEIGHT_RANGE_M,
    MAX_UPTAKE_HALF_LIVES,
    MIDNIGHT_MAX_HALF_LIVES,
    WEIGHT_RANGE_KG,
)
from oncohybrid.dicom.suv.factors import LN2
from oncohybrid.dicom.suv.headers import GE_PET_CREATOR, PHILIPS_CREATOR, SIEMENS_PT_CREATOR
from oncohybrid.dicom.suv.model import (
    PLAUSIBILITY_CHECKS,
    SUV_JSON_SCHEMA,
    DecayCorrection,
    Normalisation,
    SUVOverrides,
    SUVScaling,
    Units,
)
from oncohybrid.dicom.suv.volume_scaling import suv_volume

__all__ = [
    "SUV_JSON_SCHEMA",
    "PLAUSIBILITY_CHECKS",
    "DecayCorrection",
    "Normalisation",
    "SUVOverrides",
    "SUVScaling",
    "Units",
    "compute_suv",
    "suv_volume",
    # constants, importable from here as before the split
    "DOSE_RANGE_BQ",
    "GE_PET_CREATOR",
    "HALF_LIFE_RANGE_S",
    "HEIGHT_RANGE_M",
    "LN2",
    "MAX_UPTAKE_HALF_LIVES",
    "MIDNIGHT_MAX_HALF_LIVES",
    "PHILIPS_CREATOR",
    "SIEMENS_PT_CREATOR",
    "WEIGHT_RANGE_KG",
]
