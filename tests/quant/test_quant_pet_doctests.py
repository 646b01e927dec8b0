"""The docstring examples of the PET quantification and segmentation modules run."""

from __future__ import annotations

import doctest

import pytest

import oncohybrid.quant.pet
import oncohybrid.quant.references
import oncohybrid.segment.components
import oncohybrid.segment.grid
import oncohybrid.segment.threshold

MODULES = [
    oncohybrid.quant.pet,
    oncohybrid.quant.references,
    oncohybrid.segment.components,
    oncohybrid.segment.grid,
    oncohybrid.segment.threshold,
]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
