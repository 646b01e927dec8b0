"""A small assessed demo workspace for the web tests (phantom → ingest → assess → users)."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oncohybrid.config import Settings, get_settings

PASSWORDS = {
    "rita": ("researcher", "rita-researcher-pw"),
    "adam": ("admin", "adam-admin-pass"),
    "fred": ("fellow", "fred-fellow-pass"),
    "max": ("mentor", "max-mentor-pass"),
    # the fellowship programme's roles (issue #13): no clinical page at all
    "amy": ("applicant", "amy-applicant-pass"),
    "rob": ("reviewer", "rob-reviewer-pass"),
    "dora": ("director", "dora-director-pass"),
}


@dataclass
class Workspace:
    settings: Settings
    data_dir: Path
    truth: dict[str, Any]
    demo: tuple[str, str]
    patient_pk: int
    assessed: bool

    @property
    def patient(self) -> dict[str, Any]:
        return self.truth["patients"][0]


def build_workspace(home: Path) -> Workspace:
    from oncohybrid.phantom import generate_cohort
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.users import add_user, ensure_demo_user
    from oncohybrid.services.worklist import patient_pk_of_study

    settings = get_settings(home)
    data_dir = home / "phantom"
    truth = generate_cohort(data_dir, patients=1, timepoints=2, vendor="siemens", seed=7,
                            size="small")
    ing = Ingestor(settings)
    try:
        ing.ingest_paths([data_dir])
    finally:
        ing.close()
    demo = ensure_demo_user(settings)
    for name, (role, pw) in PASSWORDS.items():
        add_user(settings, name, pw, role, actor="test")
    study_uid = truth["patients"][0]["timepoints"][0]["study_uid"]
    pk = patient_pk_of_study(study_uid, settings)
    assessed = False
    if all(importlib.util.find_spec(f"oncohybrid.services.{m}") is not None
           for m in ("assess", "record")):
        from oncohybrid.services.assess import assess_patient

        assess_patient(truth["patients"][0]["patient_id"], settings=settings)
        assessed = True
    return Workspace(settings, data_dir, truth, demo, pk, assessed)


def csrf_of(client) -> str:
    """The session's CSRF token, read from a page's meta tag."""
    r = client.get("/")
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', r.text).group(1)


def login_client(app, username: str, password: str):
    """A TestClient signed in as ``username`` (the same steps as the ``login`` fixture)."""
    from fastapi.testclient import TestClient

    c = TestClient(app, base_url="http://testserver")
    r = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = c.post("/login", data={"username": username, "password": password,
                               "csrf_token": token, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return c
