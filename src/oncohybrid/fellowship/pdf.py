"""The fellowship's PDFs (reportlab): the certificate of completion and the final report.

The certificate prints exactly the signed content (:mod:`.certificate`) and its code, so
what the public verify page shows is what the paper says. The final report is built from
the logbook summary, the monthly sign-offs, the research project and the evaluations,
with the fellow's own text, and shows the mentor's sign-off when given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from oncohybrid.fellowship.logbook import CATEGORY_LABELS

__all__ = ["certificate_pdf", "final_report_pdf", "RESEARCH_STAGES"]

#: The research project's stages, in order (issue #13).
RESEARCH_STAGES = (
    ("protocol", "Protocol written"),
    ("ethics", "Ethics approval"),
    ("patients", "Patients selected"),
    ("examinations", "Examinations organised and monitored"),
    ("data", "Data collected"),
    ("analysis", "Analysis"),
    ("manuscript", "Manuscript"),
)


def _styles() -> dict[str, ParagraphStyle]:
    ss = getSampleStyleSheet()
    return {
        "title": ParagraphStyle("t", parent=ss["Title"], fontSize=26, leading=32),
        "h1": ParagraphStyle("h1", parent=ss["Heading1"], fontSize=16),
        "h2": ParagraphStyle("h2", parent=ss["Heading2"], fontSize=12),
        "body": ParagraphStyle("b", parent=ss["BodyText"], fontSize=10, leading=13),
        "centre": ParagraphStyle("c", parent=ss["BodyText"], fontSize=13, leading=18,
                                 alignment=1),
        "big": ParagraphStyle("g", parent=ss["BodyText"], fontSize=22, leading=28,
                              alignment=1, fontName="Helvetica-Bold"),
        "code": ParagraphStyle("k", parent=ss["BodyText"], fontSize=11, alignment=1,
                               fontName="Courier-Bold"),
    }


def _p(text: Any, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def certificate_pdf(path: str | Path, content: dict[str, Any], code: str,
                    verify_hint: str) -> Path:
    """One landscape A4 page: the signed content and the verification code."""
    path = Path(path)
    st = _styles()
    doc = SimpleDocTemplate(str(path), pagesize=landscape(A4), leftMargin=25 * mm,
                            rightMargin=25 * mm, topMargin=20 * mm, bottomMargin=15 * mm,
                            title=f"Certificate {content['serial']}",
                            author=content["school"], subject=content["programme"])
    story: list[Any] = [
        _p(content["school"], st["centre"]), _p(content["host"], st["centre"]),
        Spacer(1, 8 * mm), _p("Certificate of Completion", st["title"]), Spacer(1, 6 * mm),
        _p("This is to certify that", st["centre"]), Spacer(1, 3 * mm),
        _p(content["fellow_name"], st["big"]), Spacer(1, 4 * mm),
        _p(f"has completed the {content['programme']} in {content['topic']}", st["centre"]),
        _p(f"({content['track']} track) at {content['host']}, {content['city']}, "
           f"from {content['start']} to {content['end']}.", st["centre"]),
        Spacer(1, 4 * mm),
        _p(f"Final report signed off by the mentor on {content['report_signed_on']}. "
           f"Issued on {content['issued_on']}.", st["centre"]),
        Spacer(1, 10 * mm),
        _p(f"Certificate {content['serial']} — verification code", st["centre"]),
        _p(code, st["code"]), _p(verify_hint, st["centre"]),
    ]
    doc.build(story)
    return path


def _table(rows: list[list[Any]], widths: list[float] | None = None) -> Table:
    t = Table(rows, colWidths=widths, hAlign="LEFT")
    t.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 9),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 9),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef4")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    return t


def final_report_pdf(path: str | Path, data: dict[str, Any]) -> Path:
    """The final written report. ``data``: fellow, call, summary, months, signoffs,
    research, evaluations, text (sections), signed_by/signed_at."""
    path = Path(path)
    st = _styles()
    f = data["fellow"]
    doc = SimpleDocTemplate(str(path), pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm,
                            topMargin=18 * mm, bottomMargin=18 * mm,
                            title=f"Final report {f['fellow_id']}", author=f["name"])
    story: list[Any] = [
        _p("Final report of the fellowship year", st["h1"]),
        _p(f"{f['name']} ({f['fellow_id']}), {data['programme']} — {data['host']}; "
           f"{f['track']} track, {f['start']} to {f['end']}; mentor: {f['mentor'] or '—'}.",
           st["body"]),
    ]
    text = data.get("text") or {}
    for key, label in (("summary", "Summary by the fellow"),
                       ("clinical", "Clinical work"), ("research", "Research"),
                       ("reflection", "Reflection and plans")):
        if text.get(key):
            story += [_p(label, st["h2"]), _p(text[key], st["body"])]
    s = data["summary"]
    story += [_p("Logbook (derived from the platform and manual entries)", st["h2"]),
              _p(f"{s['entries']} entries.", st["body"])]
    if s["by_category"]:
        story.append(_table([["Category", "Entries"]] + [[CATEGORY_LABELS.get(k, k), v]
                                                          for k, v in s["by_category"].items()],
                            [110 * mm, 30 * mm]))
    if s["by_modality"] or s["by_tracer"]:
        rows = [["Modality / tracer", "Studies"]]
        rows += [[f"modality {k}", v] for k, v in s["by_modality"].items()]
        rows += [[f"tracer {k}", v] for k, v in s["by_tracer"].items()]
        story += [Spacer(1, 3 * mm), _table(rows, [110 * mm, 30 * mm])]
    if s["criteria"]:
        story += [Spacer(1, 3 * mm), _table([["Response criteria applied", "Patients"]]
                                            + [[k, v] for k, v in s["criteria"].items()],
                                            [110 * mm, 30 * mm])]
    story += [_p("Monthly sign-off", st["h2"])]
    rows = [["Month", "Entries", "Signed by", "On"]]
    for m in data["months"]:
        so = data["signoffs"].get(m["month"])
        rows.append([m["month"], m["entries"], so["mentor"] if so else "not signed",
                     so["signed_at"][:10] if so else ""])
    story.append(_table(rows, [30 * mm, 25 * mm, 50 * mm, 40 * mm]))
    r = data.get("research") or {}
    story += [_p("Research project", st["h2"]), _p(r.get("title") or "—", st["body"])]
    ms = r.get("milestones") or {}
    rows = [["Stage", "Status", "Date", "Note"]]
    for key, label in RESEARCH_STAGES:
        m = ms.get(key) or {}
        rows.append([label, m.get("status", "not started"), m.get("date", ""),
                     Paragraph(escape(m.get("note", "")), st["body"])])
    story.append(_table(rows, [55 * mm, 28 * mm, 25 * mm, 66 * mm]))
    if r.get("collaborators"):
        story.append(_p("Collaborators: " + "; ".join(f"{c['name']} ({c['role']})"
                                                      for c in r["collaborators"]), st["body"]))
    if data.get("evaluations"):
        story += [_p("Evaluations", st["h2"])]
        rows = [["Period", "Kind", "By", "Mean score", "Comment"]]
        for e in data["evaluations"]:
            rows.append([e["period"], e["kind"], e["author"], e["mean"] or "",
                         Paragraph(escape(e["comment"]), st["body"])])
        story.append(_table(rows, [22 * mm, 38 * mm, 25 * mm, 20 * mm, 69 * mm]))
    story += [_p("Mentor's sign-off", st["h2"]),
              _p(f"Signed off by {data['signed_by']} on {data['signed_at'][:10]}."
                 if data.get("signed_by") else "Not signed off yet (draft).", st["body"])]
    doc.build(story)
    return path
