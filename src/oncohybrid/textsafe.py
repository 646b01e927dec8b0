"""Terminal-safe text: control and bidirectional-override characters made visible.

File names and DICOM header values are untrusted: an ESC sequence in a file name can
clear or rewrite the terminal, a C1 CSI (U+009B) does the same on some terminals, and a
right-to-left override (U+202E, Unicode TR #9 / CVE-2021-42574 "Trojan Source") makes
``evil‮gpj.dcm`` read as ``evil…mcd.jpg``. Every character Python does not consider
printable (categories Cc, Cf, Zl, Zp, Zs other than the space, Cs, Co, Cn) is shown the
way :func:`repr` writes it (``\\x1b``, ``\\u202e``); everything else is kept as is.
"""

from __future__ import annotations


def printable(text: object) -> str:
    """``text`` with every non-printable character escaped as :func:`repr` does.

    >>> printable("evil\\x1b[2J\\u202egpj.dcm")
    'evil\\\\x1b[2J\\\\u202egpj.dcm'
    >>> printable("Zoë 山田")
    'Zoë 山田'
    """
    s = str(text)
    if s.isprintable():  # the usual case, one C-level scan
        return s
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


__all__ = ["printable"]
