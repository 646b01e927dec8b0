"""Synthetic multi-vendor FDG PET/CT patients with ground truth (see docs/phantom.md)."""

from oncohybrid.phantom.cohort import generate_cohort

__all__ = ["generate_cohort"]
