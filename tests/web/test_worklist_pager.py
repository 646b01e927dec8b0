"""The worklist page links a window of pages, not one link per page of the database."""

from __future__ import annotations

import datetime as dt
import re

from oncohybrid.config import get_settings
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Patient, Study


def test_pager_links_first_last_and_neighbours_only(tmp_path, monkeypatch):
    from web_workspace import login_client

    from oncohybrid.services.users import ensure_demo_user
    from oncohybrid.web.app import create_app

    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path))
    monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    settings = get_settings(tmp_path)
    with session_scope(settings) as db:
        patients = [Patient(patient_id=f"G{n:04d}") for n in range(700)]  # 28 pages of 25
        db.add_all(patients)
        db.flush()
        db.add_all(Study(study_instance_uid=f"1.2.826.0.6.{n}", patient_pk=p.id,
                         study_date=dt.date(2020, 1, 1) + dt.timedelta(days=n))
                   for n, p in enumerate(patients))
    user, password = ensure_demo_user(settings)
    c = login_client(create_app(settings), user, password)
    html = c.get("/", params={"page_no": 10}).text
    linked = sorted({int(n) for n in re.findall(r"page_no=(\d+)\"", html)})
    # 28 pages: the first two, the last two, and three either side of the current one.
    assert linked == [1, 2, 7, 8, 9, 11, 12, 13, 27, 28]
    assert '<span class="current">10</span>' in html
    assert html.count("…") >= 2
