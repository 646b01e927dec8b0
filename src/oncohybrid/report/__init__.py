"""Human-readable and DICOM reports built from plain data (:mod:`oncohybrid.report.data`).

- ``pdf``: tumour-board PDF per patient and meeting packs (ReportLab);
- ``plots``: MIPs, fused key slices, waterfall and spider plots (matplotlib);
- ``sr``: TID 1500 Comprehensive 3D SR with TID 1502 time-point context (highdicom);
- ``seg``: DICOM SEG of the tracked lesions (highdicom);
- ``encapsulated``: Encapsulated PDF Storage (pydicom).

The builders never touch the database; ``oncohybrid.services.report`` fills the data.
See docs/reports.md.
"""
