"""pyradiomics-style names for IBSI features where the definitions agree (``--names pyradiomics``).

Only features whose pyradiomics definition equals the IBSI one are mapped (pyradiomics
documentation "Radiomic Features"; IBSI 1 chapter 3): its texture classes average over the
13 3D directions (GLCM, GLRLM → IBSI ``ITBB``) or use 3D zones/neighbourhoods (GLSZM, NGTDM
→ ``KOBO``). Not mapped, because the values differ: kurtosis (pyradiomics is not excess,
IBSI ``IPH6`` is), PCA axis lengths (pyradiomics divides by N, IBSI by N − 1), and features
pyradiomics lacks (intensity histogram, IVH, GLDZM, local intensity, Moran's I). Unmapped
keys keep their IBSI id.
"""

from __future__ import annotations

PYRADIOMICS: dict[str, str] = {
    # shape (3D)
    "RNU0": "shape_MeshVolume", "YEKZ": "shape_VoxelVolume", "C0JK": "shape_SurfaceArea",
    "2PR5": "shape_SurfaceVolumeRatio", "QCFX": "shape_Sphericity",
    "L0JK": "shape_Maximum3DDiameter", "Q3CK": "shape_Elongation", "N17B": "shape_Flatness",
    # first order
    "Q4LE": "firstorder_Mean", "ECT3": "firstorder_Variance", "KE2A": "firstorder_Skewness",
    "Y12H": "firstorder_Median", "1GSF": "firstorder_Minimum", "QG58": "firstorder_10Percentile",
    "8DWT": "firstorder_90Percentile", "84IY": "firstorder_Maximum",
    "SALO": "firstorder_InterquartileRange", "2OJQ": "firstorder_Range",
    "4FUA": "firstorder_MeanAbsoluteDeviation", "1128": "firstorder_RobustMeanAbsoluteDeviation",
    "N8CA": "firstorder_Energy", "5ZWQ": "firstorder_RootMeanSquared",
    # GLCM, 3D averaged over directions
    "8ZQL/ITBB": "glcm_JointEnergy", "TU9B/ITBB": "glcm_JointEntropy",
    "ACUI/ITBB": "glcm_Contrast", "NI2N/ITBB": "glcm_Correlation",
    "GYBY/ITBB": "glcm_MaximumProbability", "60VM/ITBB": "glcm_JointAverage",
    "UR99/ITBB": "glcm_SumSquares", "ZGXS/ITBB": "glcm_SumAverage",
    "P6QZ/ITBB": "glcm_SumEntropy", "DG8W/ITBB": "glcm_ClusterTendency",
    "7NFM/ITBB": "glcm_ClusterShade", "AE86/ITBB": "glcm_ClusterProminence",
    "R8DG/ITBB": "glcm_Imc1", "JN9H/ITBB": "glcm_Imc2", "E8JP/ITBB": "glcm_InverseVariance",
    "IB1Z/ITBB": "glcm_Id", "WF0Z/ITBB": "glcm_Idm", "NDRX/ITBB": "glcm_Idn",
    "1QCO/ITBB": "glcm_Idmn",
    # GLRLM, 3D averaged
    "22OV/ITBB": "glrlm_ShortRunEmphasis", "W4KF/ITBB": "glrlm_LongRunEmphasis",
    "R5YN/ITBB": "glrlm_GrayLevelNonUniformity",
    "OVBL/ITBB": "glrlm_GrayLevelNonUniformityNormalized",
    "W92Y/ITBB": "glrlm_RunLengthNonUniformity",
    "IC23/ITBB": "glrlm_RunLengthNonUniformityNormalized",
    "9ZK5/ITBB": "glrlm_RunPercentage", "8CE5/ITBB": "glrlm_GrayLevelVariance",
    "SXLW/ITBB": "glrlm_RunVariance", "HJ9O/ITBB": "glrlm_RunEntropy",
    "V3SW/ITBB": "glrlm_LowGrayLevelRunEmphasis", "G3QZ/ITBB": "glrlm_HighGrayLevelRunEmphasis",
    # GLSZM, 3D
    "5QRC/KOBO": "glszm_SmallAreaEmphasis", "48P8/KOBO": "glszm_LargeAreaEmphasis",
    "JNSA/KOBO": "glszm_GrayLevelNonUniformity",
    "Y1RO/KOBO": "glszm_GrayLevelNonUniformityNormalized",
    "4JP3/KOBO": "glszm_SizeZoneNonUniformity",
    "VB3A/KOBO": "glszm_SizeZoneNonUniformityNormalized", "P30P/KOBO": "glszm_ZonePercentage",
    "BYLV/KOBO": "glszm_GrayLevelVariance", "3NSA/KOBO": "glszm_ZoneVariance",
    "GU8N/KOBO": "glszm_ZoneEntropy", "XMSY/KOBO": "glszm_LowGrayLevelZoneEmphasis",
    "5GN9/KOBO": "glszm_HighGrayLevelZoneEmphasis",
    # NGTDM, 3D
    "QCDE/KOBO": "ngtdm_Coarseness", "65HE/KOBO": "ngtdm_Contrast",
    "NQ30/KOBO": "ngtdm_Busyness", "HDEZ/KOBO": "ngtdm_Complexity",
    "1X9X/KOBO": "ngtdm_Strength",
}


def pyradiomics_names(features: dict[str, float], prefix: str = "original_"
                      ) -> dict[str, float]:
    """``features`` with pyradiomics names (``original_firstorder_Mean``) where mapped."""
    return {(prefix + PYRADIOMICS[k]) if k in PYRADIOMICS else k: v
            for k, v in features.items()}
