"""Latency of the reading room: fused PET/CT slice tiles and the patient page.

Builds a demo workspace (synthetic PET/CT patient, ingested and, when the assessment
service is installed, assessed), starts ``oncohybrid serve`` on a free loopback port and
drives it with 4 concurrent clients (httpx, one thread and one signed-in session each).
Reports p50/p95 latency per endpoint next to a static-file baseline served by the same
server in the same run. Goal: fused slice p95 ≤ 100 ms.

    .venv/bin/python benchmarks/web.py                 # clinical-size demo (default)
    .venv/bin/python benchmarks/web.py --size small    # faster set-up
    .venv/bin/python benchmarks/web.py --home DIR      # an existing workspace (make demo)
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

GOAL_FUSED_P95_MS = 100.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(home: Path, size: str, assess: bool) -> None:
    from oncohybrid.config import get_settings
    from oncohybrid.phantom import generate_cohort
    from oncohybrid.services.ingest import Ingestor

    settings = get_settings(home)
    t0 = time.perf_counter()
    truth = generate_cohort(home / "phantom", patients=1, timepoints=2, vendor="siemens",
                            seed=7, size=size)
    ing = Ingestor(settings)
    try:
        ing.ingest_paths([home / "phantom"])
    finally:
        ing.close()
    print(f"set-up: {size} phantom generated and ingested in {time.perf_counter() - t0:.1f} s")
    if assess:
        try:
            from oncohybrid.services.assess import assess_patient
        except ImportError:
            print("set-up: assessment service not installed; patient page without record")
            return
        t0 = time.perf_counter()
        assess_patient(truth["patients"][0]["patient_id"], settings=settings)
        print(f"set-up: assessed in {time.perf_counter() - t0:.1f} s")


def sign_in(base: str, username: str, password: str) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=60)
    r = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = c.post("/login", data={"username": username, "password": password,
                               "csrf_token": token})
    if r.status_code >= 400:
        raise SystemExit(f"sign-in failed: HTTP {r.status_code}")
    return c


def run_load(clients: list[httpx.Client], urls: list[str], per_client: int) -> list[float]:
    """Each client requests ``per_client`` URLs (cycling) at once; latencies in ms."""
    lat: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def worker(n: int, c: httpx.Client) -> None:
        mine = []
        for k in range(per_client):
            url = urls[(n * 7 + k) % len(urls)]
            t0 = time.perf_counter()
            r = c.get(url)
            mine.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                errors.append(f"{url}: HTTP {r.status_code}")
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker, args=(n, c)) for n, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("errors: " + "; ".join(errors[:5]))
    return lat


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=("clinical", "small"), default="clinical")
    ap.add_argument("--home", type=Path, help="benchmark an existing workspace instead")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=60, help="per client and endpoint")
    ap.add_argument("--no-assess", action="store_true")
    args = ap.parse_args()

    tmp = None
    if args.home is None:
        tmp = tempfile.TemporaryDirectory(prefix="oh-web-bench-")
        home = Path(tmp.name)
        build(home, args.size, not args.no_assess)
    else:
        home = args.home.resolve()
    from oncohybrid.config import get_settings
    from oncohybrid.services.users import ensure_demo_user
    from oncohybrid.store.queries import list_studies

    settings = get_settings(home)
    user, password = ensure_demo_user(settings)
    study = list_studies(settings=settings)[0]["study_uid"]

    port = _free_port()
    env = dict(os.environ, ONCOHYBRID_HOME=str(home))
    exe = Path(sys.executable).with_name("oncohybrid")
    log = open(home / "bench-serve.log", "wb")  # noqa: SIM115 - closed at the end
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        clients = [sign_in(base, user, password) for _ in range(args.clients)]
        t0 = time.perf_counter()
        info = clients[0].get(f"/api/studies/{study}/info").json()
        print(f"opening the study (loads CT + PET, resamples PET once): "
              f"{(time.perf_counter() - t0) * 1000:.0f} ms")
        t0 = time.perf_counter()
        clients[0].get(f"/api/studies/{study}/slice/axial/0.png")
        print(f"first tile: {(time.perf_counter() - t0) * 1000:.0f} ms")
        n_k, n_j, _ = info["shape"]
        suv = info.get("suv_max_default") or 8
        fused = [f"/api/studies/{study}/slice/axial/{k}.png?mode=fused&window=soft&cmap=hot"
                 f"&suv_max={suv}" for k in range(0, n_k, max(1, n_k // 40))]
        fused += [f"/api/studies/{study}/slice/coronal/{j}.png?mode=fused&suv_max={suv}"
                  for j in range(0, n_j, max(1, n_j // 10))]
        pk = clients[0].get("/api/worklist").json()["rows"][0]["pk"]
        cases = {
            "static file (baseline)": ["/static/app.css"],
            "fused slice PNG": fused,
            "patient page": [f"/patients/{pk}"],
        }
        for urls in cases.values():  # warm-up (route import, caches of the page data)
            run_load(clients[:1], urls, 3)
        print(f"\n{args.clients} concurrent clients × {args.requests} requests, loopback, "
              f"CT grid {info['shape']}")
        print(f"{'endpoint':<26}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>9}{'p50/static':>12}")
        base_p50 = None
        results = {}
        for name, urls in cases.items():
            t0 = time.perf_counter()
            lat = run_load(clients, urls, args.requests)
            wall = time.perf_counter() - t0
            p50, p95 = pct(lat, 50), pct(lat, 95)
            base_p50 = base_p50 or p50
            results[name] = (p50, p95)
            print(f"{name:<26}{p50:>9.1f}{p95:>9.1f}{len(lat) / wall:>9.0f}"
                  f"{p50 / base_p50:>11.1f}×")
        p95 = results["fused slice PNG"][1]
        verdict = "meets" if p95 <= GOAL_FUSED_P95_MS else "MISSES"
        print(f"\nfused slice p95 {p95:.1f} ms {verdict} the goal of ≤ {GOAL_FUSED_P95_MS:.0f} ms")
        for c in clients:
            c.close()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
