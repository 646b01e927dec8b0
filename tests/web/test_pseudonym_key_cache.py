"""The pseudonym key is cached per key file, and a replaced or rewritten file is read again.

A researcher's worklist search computes one pseudonym per patient; reading the key file
for each one dominated it (issue #11). The cache is keyed by the file's identity (inode,
size, mtime), so pseudonyms follow the key on disk exactly as before.
"""

from __future__ import annotations

import os
from pathlib import Path

from oncohybrid.config import get_settings
from oncohybrid.services import users


def test_key_read_once_and_again_when_the_file_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path))
    settings = get_settings()
    first = users.pseudonym(settings, "PH7-001")
    path = settings.home / users.PSEUDONYM_KEY_FILE
    reads: list[Path] = []
    real = Path.read_bytes

    def counting(self: Path) -> bytes:
        reads.append(self)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    assert [users.pseudonym(settings, f"P{n}") for n in range(50)]
    assert users.pseudonym(settings, "PH7-001") == first
    assert reads == []
    # Another key written in place (same size): read again, other pseudonyms.
    st = path.stat()
    path.write_bytes(os.urandom(32))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    second = users.pseudonym(settings, "PH7-001")
    assert second != first and reads == [path]
    # Replaced by a new file (a restored backup): read again.
    tmp = path.with_suffix(".new")
    tmp.write_bytes(os.urandom(32))
    os.replace(tmp, path)
    assert users.pseudonym(settings, "PH7-001") not in (first, second)
    # Deleted: a new key is created, as before.
    path.unlink()
    assert users.pseudonym(settings, "PH7-001") not in (first, second)
    assert path.exists()
