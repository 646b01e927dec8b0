"""The batch page in a real browser (#17): the nav link, a running run's counts, cancel."""

from __future__ import annotations

import datetime as dt

import pytest
from e2e_browser import shot, sign_in
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _running_run(settings) -> int:
    """A run an hour old: 1 done, 2 queued (written as a driver would)."""
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_batch import BatchRun, BatchTask

    with session_scope(settings) as s:
        run = BatchRun(kind="quantify", status="running", cancel_requested=False, params={},
                       cluster="local:2", retries=1,
                       created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
        s.add(run)
        s.flush()
        for k, st in enumerate(("done", "queued", "queued")):
            s.add(BatchTask(run_pk=run.id, position=k, kind="quantify", unit_key=f"1.2.3.{k}",
                            patient_id="PH-E2E", input_hash="0" * 64, params_hash="0" * 64,
                            params={}, software_version="test", status=st,
                            attempts=int(st == "done"), seconds=9.0 if st == "done" else None))
        return run.id


def test_batch_page_shows_progress_and_cancels(page, e2e_ws):
    run_pk = _running_run(e2e_ws.settings)
    sign_in(page, *e2e_ws.demo)
    page.click("nav >> text=Batches")
    row = page.locator(f'tr[data-run="{run_pk}"]')
    expect(row.locator(".n-done")).to_have_text("1")
    expect(row.locator(".n-queued")).to_have_text("2")
    expect(row.locator(".throughput")).to_contain_text("tasks/h")
    row.locator("a").click()
    expect(page.locator("#tasks tbody tr")).to_have_count(3)
    shot(page, "batch-run")
    page.click("#cancel-run")
    expect(page.locator("#run-status")).to_contain_text("cancel requested")
    expect(page.locator("#cancel-run")).to_have_count(0)
    page.watch.check("batch")
