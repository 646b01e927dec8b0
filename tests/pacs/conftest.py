"""Fixtures of the PACS tests: a real Orthanc (+ DICOMweb plugin) and a fresh workspace.

Orthanc is started once per session from the Debian package as a child process with a
temporary JSON configuration: DICOM and HTTP ports free on loopback, storage and index
in a temporary folder, remote HTTP access refused, HTTP basic authentication with a test
user, only the DICOMweb plugin loaded, and our Storage SCP registered in
``DicomModalities`` (AE title, 127.0.0.1, a port reserved for C-MOVE). The fixture waits
on ``GET /system`` and stops the process by its pid at the end. Without Orthanc the
tests are skipped, except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).parent))  # pacs_data helper module

PLUGIN_CANDIDATES = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/lib/orthanc/libOrthancDicomWeb.so",
)
ORTHANC_USER = ("pacs-test", "not-a-real-secret")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unavailable(msg: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"Orthanc needed under CI: {msg}")
    pytest.skip(msg)


@dataclass(frozen=True)
class OrthancServer:
    pid: int
    aet: str
    dicom_port: int
    http_port: int
    auth: tuple[str, str]
    listener_ae: str
    listener_port: int  # where Orthanc sends C-MOVE results (our listener)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def rest(self, method: str, path: str, **kwargs: object) -> requests.Response:
        resp = requests.request(method, self.url + path, auth=self.auth, timeout=30, **kwargs)
        resp.raise_for_status()
        return resp

    def upload(self, paths: list[Path]) -> None:
        for path in paths:
            self.rest("POST", "/instances", data=path.read_bytes())

    def delete_all_studies(self) -> None:
        for study_id in self.rest("GET", "/studies").json():
            self.rest("DELETE", f"/studies/{study_id}")


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    exe = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists()
                                      else None)
    if exe is None:
        _unavailable("the Orthanc binary is not installed (Debian package orthanc)")
    plugin = next((p for p in PLUGIN_CANDIDATES if Path(p).exists()), None)
    if plugin is None:
        _unavailable("the Orthanc DICOMweb plugin is not installed (orthanc-dicomweb)")
    root = tmp_path_factory.mktemp("orthanc")
    http_port, dicom_port, listener_port = free_port(), free_port(), free_port()
    config = {
        "Name": "oncohybrid-test",
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {ORTHANC_USER[0]: ORTHANC_USER[1]},
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "index"),
        "Plugins": [plugin],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
        "DicomModalities": {"oncohybrid": ["ONCOHYBRID", "127.0.0.1", listener_port]},
        "DicomAlwaysAllowStore": True,
        "DicomCheckModalityHost": True,
        "DicomScuTimeout": 10,
        "StableAge": 1,
        "SaveJobs": False,
        "ConcurrentJobs": 2,
        "HttpTimeout": 30,
        "ExecuteLuaEnabled": False,
        "WebDavEnabled": False,
        "LimitFindResults": 0,
    }
    cfg = root / "orthanc.json"
    cfg.write_text(json.dumps(config, indent=2))
    log = open(root / "orthanc.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([exe, str(cfg)], stdout=log, stderr=subprocess.STDOUT, cwd=root)
    server = OrthancServer(
        pid=proc.pid,
        aet="ORTHANC",
        dicom_port=dicom_port,
        http_port=http_port,
        auth=ORTHANC_USER,
        listener_ae="ONCOHYBRID",
        listener_port=listener_port,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"Orthanc exited with {proc.returncode}: see {root / 'orthanc.log'}")
            try:
                if requests.get(server.url + "/system", auth=server.auth, timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Orthanc did not answer /system within 30 s ({root / 'orthanc.log'})")
            time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ONCOHYBRID_HOME (SQLite database + file store) for one test."""
    from oncohybrid.store.db import dispose_engines

    ws = tmp_path / "home"
    monkeypatch.setenv("ONCOHYBRID_HOME", str(ws))
    monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    yield ws
    dispose_engines()
