"""Load test of the HTTP service on loopback: N uploads from C concurrent clients.

Starts ``robocall``'s app under uvicorn in a child process on 127.0.0.1 (a fake detector by
default, so the figures are the service's own overhead: upload, store, queue, workers; ``--detector
real`` loads the models), sends ``--uploads`` recordings from ``--clients`` threads, polls each
until it is done, and reports throughput, p50/p95 latency, errors, 503 retries and the server's
peak memory. Every accepted analysis is checked at the end: nothing accepted may be lost.

Bounded: ``--uploads`` requests (default 200) and ``--max-seconds`` wall time (default 300); the
only address it talks to is 127.0.0.1.

    .venv/bin/python bench/load_service.py                 # 200 uploads, 16 clients, fake models
    .venv/bin/python bench/load_service.py --detector real --uploads 20 --clients 4
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only, by construction


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _wav(seed: int, seconds: float) -> bytes:
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    rate = 8000
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 60 * rng.random()
    x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.02 * rng.standard_normal(t.size)
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _multipart(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = secrets.token_hex(12)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), boundary


@dataclass
class Stats:
    accept_s: list[float] = field(default_factory=list)  # POST until 202
    done_s: list[float] = field(default_factory=list)  # first POST until status done/failed
    accepted: list[str] = field(default_factory=list)
    failed_jobs: int = 0
    errors: list[str] = field(default_factory=list)
    retries_503: int = 0
    retries_429: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(port: int, jobs: list[tuple[bytes, str]], stats: Stats, deadline: float) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    for data, name in jobs:
        if time.monotonic() > deadline:
            with stats.lock:
                stats.errors.append("time limit reached before sending")
            continue
        body, boundary = _multipart(data, name)
        started = time.monotonic()
        analysis_id = None
        while time.monotonic() < deadline:
            try:
                conn.request(
                    "POST",
                    "/v1/analyses",
                    body=body,
                    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                )
                resp = conn.getresponse()
                payload = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
                with stats.lock:
                    stats.errors.append(f"POST: {exc!r}")
                break
            if resp.status in (503, 429):  # full queue or rate limit: wait as told, retry
                with stats.lock:
                    if resp.status == 503:
                        stats.retries_503 += 1
                    else:
                        stats.retries_429 += 1
                time.sleep(min(5.0, float(resp.getheader("Retry-After") or 1)))
                # The server answered before reading the body and may close the connection.
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
                continue
            if resp.status != 202:
                with stats.lock:
                    stats.errors.append(f"POST {resp.status}: {payload[:200]!r}")
                break
            analysis_id = json.loads(payload)["id"]
            with stats.lock:
                stats.accept_s.append(time.monotonic() - started)
                stats.accepted.append(analysis_id)
            break
        if analysis_id is None:
            continue
        while time.monotonic() < deadline:
            conn.request("GET", f"/v1/analyses/{analysis_id}")
            resp = conn.getresponse()
            state = json.loads(resp.read())
            if state.get("status") in ("done", "failed"):
                with stats.lock:
                    stats.done_s.append(time.monotonic() - started)
                    stats.failed_jobs += state["status"] == "failed"
                break
            time.sleep(0.05)
    conn.close()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _serve_child(args: argparse.Namespace) -> int:
    """Runs in the child process: the app under uvicorn on 127.0.0.1."""
    import logging

    import uvicorn

    sys.path.insert(0, str(ROOT))
    from service.http.app import create_app, get_detector
    from service.settings import Settings

    logging.basicConfig(level=logging.WARNING)
    settings = Settings(
        data_dir=Path(args.data_dir),
        local_mode=True,
        host=HOST,
        port=args.port,
        workers=args.workers,
        queue_size=args.queue_size,
        rate_limit_per_min=1e6,
        rate_limit_burst=10_000,
        read_rate_limit_per_min=1e7,
        poll_interval_s=0.2,
    )
    app = create_app(settings)
    if args.detector == "fake":
        from tests.service.fake_detector import FakeDetector

        fake = FakeDetector(delay_s=args.fake_delay_s)
        app.dependency_overrides[get_detector] = lambda: fake
    uvicorn.run(app, host=HOST, port=args.port, log_level="warning", lifespan="on")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="server analysis workers")
    parser.add_argument("--queue-size", type=int, default=32)
    parser.add_argument("--detector", choices=("fake", "real"), default="fake")
    parser.add_argument(
        "--fake-delay-s",
        type=float,
        default=0.02,
        help="seconds the fake detector 'works' per upload",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each recording")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="wall-time bound")
    parser.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_child:
        return _serve_child(args)
    if not (1 <= args.uploads <= 10_000 and 1 <= args.clients <= 256):
        parser.error("--uploads must be in [1, 10000] and --clients in [1, 256]")

    payloads = [(_wav(i, args.seconds), f"call_{i:04d}.wav") for i in range(args.uploads)]
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="robocall-bench-") as data_dir:
        child = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve-child",
                "--port",
                str(port),
                "--data-dir",
                data_dir,
                "--workers",
                str(args.workers),
                "--queue-size",
                str(args.queue_size),
                "--detector",
                args.detector,
                "--fake-delay-s",
                str(args.fake_delay_s),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            return _run(args, port, child, payloads)
        finally:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()


def _run(
    args: argparse.Namespace,
    port: int,
    child: subprocess.Popen[bytes],
    payloads: list[tuple[bytes, str]],
) -> int:
    ready_by = time.monotonic() + 120
    while True:
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                break
        except OSError:
            pass
        if child.poll() is not None or time.monotonic() > ready_by:
            sys.stderr.write("server did not become ready\n")
            return 1
        time.sleep(0.2)
    stats = Stats()
    shares = [payloads[i :: args.clients] for i in range(args.clients)]
    deadline = time.monotonic() + args.max_seconds
    started = time.monotonic()
    threads = [
        threading.Thread(target=_client, args=(port, share, stats, deadline)) for share in shares
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall_s = time.monotonic() - started

    lost = []
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    for analysis_id in stats.accepted:
        conn.request("GET", f"/v1/analyses/{analysis_id}")
        resp = conn.getresponse()
        body = json.loads(resp.read())
        if resp.status != 200 or body.get("status") not in ("done", "failed"):
            lost.append(analysis_id)
    summary = {
        "uploads": args.uploads,
        "clients": args.clients,
        "workers": args.workers,
        "detector": args.detector,
        "recording_s": args.seconds,
        "upload_bytes_mean": int(statistics.mean(len(p[0]) for p in payloads)),
        "accepted": len(stats.accepted),
        "finished": len(stats.done_s),
        "failed_analyses": stats.failed_jobs,
        "errors": len(stats.errors),
        "retries_503": stats.retries_503,
        "retries_429": stats.retries_429,
        "lost": len(lost),
        "wall_s": round(wall_s, 2),
        "throughput_per_s": round(len(stats.done_s) / wall_s, 2) if wall_s else None,
        "accept_p50_ms": round(1000 * _pct(stats.accept_s, 50), 1),
        "accept_p95_ms": round(1000 * _pct(stats.accept_s, 95), 1),
        "done_p50_ms": round(1000 * _pct(stats.done_s, 50), 1),
        "done_p95_ms": round(1000 * _pct(stats.done_s, 95), 1),
        "server_peak_rss_mb": round(_peak_rss_mb(child.pid), 1),
        "client_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(summary))
    for line in stats.errors[:10]:
        sys.stderr.write(f"error: {line}\n")
    ok = not lost and not stats.errors and len(stats.done_s) == args.uploads
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
