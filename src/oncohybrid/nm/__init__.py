"""Nuclear medicine beyond FDG, pure: isotopes, SPECT activity, MIRD dosimetry, PSMA/SSTR
scores (issue #20).
"""
