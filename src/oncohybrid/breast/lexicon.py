"""The BI-RADS lexicon (5th edition; CEM supplement 2022) as data: ``lexicon.json``.

Each descriptor field lists, per modality, the codes it allows and, per code, the English
and French terms. Mammography descriptors serve digital mammography (MG), tomosynthesis
(DBT) and the low-energy images of contrast-enhanced mammography (CEM); ultrasound and MRI
have their own; CEM adds the enhancement descriptors of the 2022 supplement (background
parenchymal enhancement, lesion conspicuity, mass internal enhancement, non-mass
enhancement distribution and pattern).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["LANGUAGES", "MODALITIES", "lexicon", "term"]

LANGUAGES = ("en", "fr")
MODALITIES = ("MG", "DBT", "CEM", "US", "MRI")


@cache
def lexicon() -> dict[str, Any]:
    """The lexicon (read once from the package data)."""
    text = resources.files("oncohybrid.breast").joinpath("lexicon.json").read_text("utf-8")
    return json.loads(text)


def term(table: str, code: str, lang: str, field: str | None = None) -> str:
    """The term of ``code`` in ``lang`` from a top-level table (``composition``,
    ``laterality`` …) or, with ``field``, from that descriptor field."""
    lex = lexicon()
    entry = lex["fields"][field]["terms"][code] if field else lex[table][code]
    return entry[lang]


def allowed(field: str, modality: str) -> list[str]:
    """The codes ``field`` allows for ``modality`` (empty when it does not apply)."""
    return list(lexicon()["fields"][field]["modalities"].get(modality, []))


def fields_for(finding_type: str, modality: str) -> list[str]:
    """The descriptor fields a finding type has in a modality, in lexicon order."""
    return [name for name, spec in lexicon()["fields"].items()
            if finding_type in spec["types"] and modality in spec["modalities"]]
