"""Where the project's public reference data lives for the tests.

The data is not in the repository: it sits in ``shared/data`` beside the checkout
(``<repo>/../shared/data``), as on the developers' machines and in CI. Override with
``ONCOHYBRID_SHARED_DATA``. Under CI (env ``CI`` set) missing data is a failure, not a skip,
so a green run cannot hide that the reference tests never ran.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("ONCOHYBRID_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def require(relative: str) -> Path:
    """The reference data folder, skipping (or failing under CI) when it is absent."""
    path = shared_data_dir() / relative
    if not path.exists():
        msg = f"reference data {path} not found (set ONCOHYBRID_SHARED_DATA)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def path_of(relative: str) -> Path:
    """The path without checking it (for module-level constants)."""
    return shared_data_dir() / relative
