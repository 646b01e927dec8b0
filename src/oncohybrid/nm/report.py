"""The dosimetry report of one therapy cycle as a PDF (reportlab): patient and
administration, the dose table per VOI, the time–activity curves and DVHs, the time points
with their registration, and every constant with its source — the numbers of the JSON
document of :func:`oncohybrid.services.nm.dosimetry`, nothing recomputed."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

__all__ = ["dosimetry_pdf"]

_FONT, _BOLD = "NmDejaVu", "NmDejaVu-Bold"


def _fonts() -> None:
    import matplotlib
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if _FONT in pdfmetrics.getRegisteredFontNames():
        return
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdfmetrics.registerFont(TTFont(_FONT, str(ttf / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(_BOLD, str(ttf / "DejaVuSans-Bold.ttf")))


def _f(v: float | None, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def dosimetry_pdf(doc: dict[str, Any], out: str | Path, *, patient_label: str | None = None
                  ) -> Path:
    """Write the PDF report of a dosimetry document to ``out``; returns the path."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        Image,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    from oncohybrid.nm.plots import dvh_png, tac_png

    _fonts()
    base = ParagraphStyle("b", fontName=_FONT, fontSize=8.5, leading=11)
    small = ParagraphStyle("s", parent=base, fontSize=7.2, leading=9)
    h1 = ParagraphStyle("h1", parent=base, fontName=_BOLD, fontSize=15, leading=19)
    h2 = ParagraphStyle("h2", parent=base, fontName=_BOLD, fontSize=11, leading=15,
                        spaceBefore=6)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    pdf = SimpleDocTemplate(str(out_path), pagesize=landscape(A4), leftMargin=14 * mm,
                            rightMargin=14 * mm, topMargin=12 * mm, bottomMargin=12 * mm,
                            title=f"Dosimetry cycle {doc['cycle']}", author="oncohybrid")
    method = "local energy deposition" if doc["method"] == "local" else "voxel S-values"
    story: list[Any] = [
        Paragraph(escape(f"Dosimetry report · cycle {doc['cycle']} · {method}"), h1),
        Paragraph(escape(
            f"Patient {patient_label or doc['patient_id']} · "
            f"{doc.get('radiopharmaceutical') or doc['isotope']} · "
            f"{doc['injected_mbq']} MBq administered {doc['administration']}"), base),
        Paragraph("Dose per VOI", h2)]
    head = ["VOI", "Mass (g)", "TIA (MBq·h)", "Dose (Gy)", "Gy/GBq", "Fit", "r²", "BED (Gy)",
            "Cumulative (Gy)", "D50/D90/D2 (Gy)"]
    rows: list[list[Any]] = [[Paragraph(h, small) for h in head]]
    for v in doc["vois"]:
        h = v["dvh"]
        rows.append([Paragraph(escape(str(c)), small) for c in (
            v["name"], _f(v["mass_g"], ".1f"), _f(v["tia_mbq_h"], ".0f"),
            _f(v["dose_gy"], ".3f"), _f(v.get("dose_gy_per_gbq"), ".3f"), v["fit"]["model"],
            _f(v["fit"]["r2"], ".4f"), _f(v["bed_gy"], ".3f"),
            f"{_f(v['cumulative_dose_gy'], '.3f')} (cycles "
            f"{', '.join(str(c) for c in v['cycles_in_cumulative'])})",
            f"{h['d50_gy']:.2f} / {h['d90_gy']:.2f} / {h['d2_gy']:.2f}")])
    table = Table(rows, repeatRows=1)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef6")),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story += [table, Spacer(1, 4 * mm)]
    story.append(Table([[Image(io.BytesIO(tac_png(doc)), width=125 * mm, height=75 * mm),
                         Image(io.BytesIO(dvh_png(doc)), width=125 * mm, height=75 * mm)]]))
    story.append(Paragraph("Time points", h2))
    for tp in doc["timepoints"]:
        reg = tp.get("registration")
        where = "reference grid" if not reg else (
            f"{reg['method']}" + (f", shift {reg['translation_mm']} mm, rotation "
                                  f"{reg['rotation_deg']}°" if reg.get("translation_mm") else ""))
        story.append(Paragraph(escape(f"{tp['time_h']} h after administration: activity from "
                                      f"{tp['activity_source']}; {where}"), small))
    c = doc["constants"]
    iso = c["isotope"]
    lines = [
        f"Isotope {iso['symbol']}: T½ {iso['half_life_h']} h; electrons "
        f"{iso['electron_mev_per_decay']} MeV/decay; photons {iso['photon_mev_per_decay']} "
        f"MeV/decay ({iso['source']}).",
        f"Local deposition: {c['local_deposition']}.",
        f"Density from CT: {c['density']}.",
        f"Kidney BED: α/β {c['kidney_bed']['alpha_beta_gy']} Gy, repair half-time "
        f"{c['kidney_bed']['repair_half_time_h']} h ({c['kidney_bed']['source']}); "
        "BED = D(1 + G·D/(α/β)), cycles fully repaired between administrations.",
        f"Voxel TIA: {c['voxel_tia']}. VOIs: {c['voi_source']}. Fit requested: "
        f"{c['fit_request']}.",
        "1 MBq·h = 3.6·10⁹ decays; 1 MeV = 1.602176634·10⁻¹³ J.",
    ]
    if c.get("voxel_s_kernel"):
        lines.append(f"Voxel S-values: {c['voxel_s_kernel']['description']}; self-dose S "
                     f"{c['voxel_s_kernel']['s_self_mgy_per_mbq_s']} mGy/(MBq·s).")
    story.append(Paragraph("Constants", h2))
    story += [Paragraph(escape(t), small) for t in lines]
    fit_lines = [f"{v['name']}: {v['fit']['model']} — {v['fit'].get('choice', '')}; "
                 + ", ".join(f"{k} {p}" for k, p in v["fit"]["parameters"].items())
                 for v in doc["vois"]]
    story.append(Paragraph("Fits", h2))
    story += [Paragraph(escape(t), small) for t in fit_lines]
    if doc.get("notes"):
        story.append(Paragraph("Notes", h2))
        story += [Paragraph(escape(n), small) for n in doc["notes"]]
    pdf.build(story)
    return out_path
