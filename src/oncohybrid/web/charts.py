"""Small inline SVG trend charts (sum of diameters, SULpeak, TMTV over time points).

Written by hand because the page needs a few hundred bytes of static SVG with no
script or inline style (the Content-Security-Policy forbids both); plotting libraries
emit style attributes. Presentation attributes (``fill``, ``stroke``) are allowed.
"""

from __future__ import annotations

from html import escape

W, H = 240, 96
PAD_L, PAD_R, PAD_T, PAD_B = 36, 10, 18, 20


def trend_svg(title: str, unit: str, labels: list[str], values: list[float | None]) -> str:
    """An SVG line chart of ``values`` at ``labels`` (gaps where a value is ``None``)."""
    pts = [(i, v) for i, v in enumerate(values) if v is not None]
    head = (f'<svg class="trend" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" '
            f'width="{W}" height="{H}" role="img" aria-label="{escape(title)}">'
            f'<text x="4" y="12" font-size="11" fill="#1f2d3d" font-weight="600">'
            f'{escape(title)} <tspan fill="#6b7a8c" font-weight="400">({escape(unit)})</tspan>'
            f'</text>')
    if not pts:
        return head + '<text x="40" y="55" font-size="11" fill="#6b7a8c">no values</text></svg>'
    vmax = max(v for _, v in pts)
    vmin = min(0.0, min(v for _, v in pts))
    span = (vmax - vmin) or 1.0
    n = max(len(values) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = PAD_L + (W - PAD_L - PAD_R) * (i / n if len(values) > 1 else 0.5)
        y = H - PAD_B - (H - PAD_T - PAD_B) * (v - vmin) / span
        return round(x, 1), round(y, 1)

    parts = [head,
             f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" '
             f'stroke="#c5ced8"/>',
             f'<text x="{PAD_L - 4}" y="{PAD_T + 4}" font-size="9" fill="#6b7a8c" '
             f'text-anchor="end">{vmax:.3g}</text>',
             f'<text x="{PAD_L - 4}" y="{H - PAD_B}" font-size="9" fill="#6b7a8c" '
             f'text-anchor="end">{vmin:.3g}</text>']
    path = " ".join(("M" if k == 0 else "L") + f"{x},{y}"
                    for k, (x, y) in enumerate(xy(i, v) for i, v in pts))
    parts.append(f'<path d="{path}" fill="none" stroke="#2f6fb5" stroke-width="2"/>')
    for i, v in pts:
        x, y = xy(i, v)
        parts.append(f'<circle cx="{x}" cy="{y}" r="3" fill="#2f6fb5">'
                     f'<title>{escape(labels[i])}: {v:.4g} {escape(unit)}</title></circle>')
    for i, lab in enumerate(labels):
        x, _ = xy(i, vmin)
        parts.append(f'<text x="{x}" y="{H - 6}" font-size="9" fill="#6b7a8c" '
                     f'text-anchor="middle">{escape(lab)}</text>')
    parts.append("</svg>")
    return "".join(parts)
