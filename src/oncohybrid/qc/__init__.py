"""Scanner quality control, pure: NEMA/IEC body-phantom analysis, EARL compliance, cross-
calibration (issue #20).
"""
