"""Breast imaging, pure: the BI-RADS lexicon, assessment categories, report text, elastography,
the outcome audit (issue #21).
"""
