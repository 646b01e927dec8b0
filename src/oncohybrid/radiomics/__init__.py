"""IBSI radiomics: image biomarkers of a region of interest (Zwanenburg et al., Radiology
2020;295:328, IBSI reference manual arXiv:1612.07003; IBSI 2 filters, arXiv:2006.05470).

Pure computation on arrays: no storage, no web. The shared types are in :mod:`.roi`.
"""
