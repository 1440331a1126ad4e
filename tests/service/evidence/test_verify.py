"""Verifying a pack beyond its own signature (issue 14): pinned keys, forged and re-signed packs,
agreement between the pack's files, RFC 3161 timestamps from a local TSA, re-zipped packs."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import socket
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.types import Audio, Label
from service import cli
from service.evidence import signing as keys
from service.evidence.pack import build_pack
from service.evidence.timestamp import (
    TimestampError,
    check_timestamp_reply,
    parse_timestamp_request,
    send_request,
    timestamp_request,
)
from service.evidence.verify import add_timestamp_reply, verify_pack
from tests.conftest import synthesize
from tests.service.evidence.local_tsa import OPENSSL, LocalTsa
from tests.service.evidence.test_evidence import (
    CASE,
    HAS_FONT,
    SR,
    flip,
    make_verdict,
    read,
    rezip,
    wav_bytes,
)

pytestmark = pytest.mark.skipif(
    not HAS_FONT, reason="no CJK font: apt-get install -y fonts-wqy-microhei"
)
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")


@pytest.fixture(scope="module")
def recording() -> tuple[bytes, Audio]:
    samples = synthesize("robot", sr=SR, duration_s=6.0, rng=np.random.default_rng(6))
    original = wav_bytes(samples)
    return original, Audio(make_verdict(original).audio, samples[None, :].astype(np.float32))


@pytest.fixture(scope="module")
def signer() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def pack(recording: tuple[bytes, Audio], signer: Ed25519PrivateKey) -> bytes:
    original, audio = recording
    return build_pack(original, make_verdict(original), CASE, signing_key=signer, audio=audio)


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> LocalTsa:
    if OPENSSL is None:
        pytest.skip("openssl not installed")
    return LocalTsa(tmp_path_factory.mktemp("tsa"))


def resign(pack: bytes, changes: dict[str, bytes], key: Ed25519PrivateKey) -> bytes:
    """What a forger holding no key of the victim's does: change files, re-list, re-sign."""
    manifest = json.loads(read(pack, "manifest.json"))
    for entry in manifest["files"]:
        if entry["path"] in changes:
            entry["sha256"] = hashlib.sha256(changes[entry["path"]]).hexdigest()
            entry["size_bytes"] = len(changes[entry["path"]])
    manifest["signature"]["public_key_sha256"] = keys.fingerprint(key.public_key())
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
    replace = {
        **changes,
        "manifest.json": manifest_bytes,
        "manifest.sig": key.sign(manifest_bytes),
        "public_key.pem": keys.public_pem(key.public_key()),
        "manifest.tsq": timestamp_request(hashlib.sha256(manifest_bytes).digest()),
    }
    return rezip(pack, lambda name, data: replace.get(name, data))


def forged_report(pack: bytes) -> bytes:
    report = json.loads(read(pack, "report.json"))
    report["verdict"]["label"] = Label.HUMAN.value
    report["verdict"]["robot_probability"] = 0.09
    return json.dumps(report, ensure_ascii=False).encode()


# --- what the signature proves, pinning the key -------------------------------------------------
def test_a_hand_forged_resigned_pack_is_caught_by_the_files_disagreeing(pack: bytes) -> None:
    forger = Ed25519PrivateKey.generate()
    forged = resign(pack, {"report.json": forged_report(pack)}, forger)
    result = verify_pack(forged)  # no pin: the forger's own signature is valid
    assert {"manifest.sig", "report.json"} <= {c.path for c in result.checks if c.ok}
    problems = {c.path: c.message for c in result.problems}
    assert "report.pdf" in problems and "verdict" in problems["report.pdf"]
    assert "complaint.json" in problems and "INCONSISTENT" in problems["complaint.json"]


def test_a_consistently_forged_pack_is_caught_only_by_the_pinned_key(
    pack: bytes, recording: tuple[bytes, Audio], signer: Ed25519PrivateKey
) -> None:
    """A forger who rebuilds every file with their own key makes a pack that agrees with itself:
    only the key the complainant published (--public-key / --fingerprint) tells it apart."""
    original, audio = recording
    forger = Ed25519PrivateKey.generate()
    verdict = make_verdict(original)
    fake = dataclasses.replace(verdict, label=Label.HUMAN, robot_probability=0.09)
    forged = build_pack(original, fake, CASE, signing_key=forger, audio=audio)
    assert verify_pack(forged).ok
    genuine_pem = keys.public_pem(signer.public_key())
    result = verify_pack(forged, trusted_public_key=genuine_pem)
    assert [c.path for c in result.problems] == ["public_key.pem"]
    assert "NOT the key you pinned" in result.problems[0].message
    fingerprint = keys.readable_fingerprint(keys.fingerprint(signer.public_key()))
    assert not verify_pack(forged, trusted_fingerprint=fingerprint).ok
    assert verify_pack(pack, trusted_fingerprint=fingerprint.replace(" ", ":")).ok


def test_verify_cli_pins_and_says_what_the_signature_proves(
    pack: bytes, signer: Ed25519PrivateKey, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pack.zip"
    path.write_bytes(pack)
    assert cli.main(["verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "whoever holds that key" in out
    assert keys.readable_fingerprint(keys.fingerprint(signer.public_key())) in out
    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(keys.public_pem(Ed25519PrivateKey.generate().public_key()))
    assert cli.main(["verify", str(path), "--public-key", str(stranger)]) == 1
    assert "NOT the key you pinned" in capsys.readouterr().out
    fp = keys.fingerprint(signer.public_key())
    assert cli.main(["verify", str(path), "--fingerprint", fp]) == 0
    assert "whoever holds" not in capsys.readouterr().out.split("INTACT")[-1]
    assert cli.main(["verify", str(path), "--fingerprint", "abc"]) == 2
    assert "64 hex digits" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "edit", "says"),
    [
        ("SHA256SUMS", lambda d: d.replace(d[:8], b"0" * 8, 1), "another hash"),
        ("recording/original.wav.sha256", lambda d: b"0" * 64 + d[64:], "another recording"),
        (
            "complaint.json",
            lambda d: d.replace(b"electronic_sales_robot", b"human_sales_pitch"),
            "another verdict",
        ),
    ],
)
def test_each_disagreeing_file_is_named(pack: bytes, name: str, edit: object, says: str) -> None:
    assert callable(edit)
    forged = resign(pack, {name: edit(read(pack, name))}, Ed25519PrivateKey.generate())
    problems = {c.path: c.message for c in verify_pack(forged).problems}
    assert name in problems and says in problems[name], problems


# --- re-zipping ---------------------------------------------------------------------------------
def test_a_pack_rezipped_with_directory_entries_still_verifies(pack: bytes, tmp_path: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(pack)) as archive:
        archive.extractall(tmp_path / "unzipped")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:  # what Python's or the OS's "compress" writes
        for path in sorted((tmp_path / "unzipped").rglob("*")):
            archive.write(path, path.relative_to(tmp_path / "unzipped").as_posix())
    assert any(i.is_dir() for i in zipfile.ZipFile(io.BytesIO(buf.getvalue())).infolist())
    assert verify_pack(buf.getvalue()).ok
    if shutil.which("zip") is None:
        pytest.skip("zip not installed (scripts/install_system_packages.sh)")
    subprocess.run(["zip", "-qr", "../rezipped.zip", "."], cwd=tmp_path / "unzipped", check=True)
    result = verify_pack((tmp_path / "rezipped.zip").read_bytes())
    assert result.ok, result.problems


# --- RFC 3161 timestamps ------------------------------------------------------------------------
@needs_openssl
def test_stamp_over_http_then_verify(
    pack: bytes, tsa: LocalTsa, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pack.zip"
    path.write_bytes(pack)
    ca = tmp_path / "ca.pem"
    ca.write_bytes(tsa.ca_pem)
    with tsa.serve() as url:
        assert cli.main(["stamp", str(path), "--tsa", url, "--tsa-ca", str(ca)]) == 0
    assert "Timestamped" in capsys.readouterr().out
    stamped = path.read_bytes()
    result = verify_pack(stamped, tsa_roots=(tsa.ca_pem,))
    assert result.ok, result.problems
    assert result.timestamp is not None and result.timestamp.root_trusted
    tsr_check = next(c for c in result.checks if c.path == "manifest.tsr")
    assert "imprint = sha256(manifest.json)" in tsr_check.message
    assert cli.main(["verify", str(path), "--tsa-ca", str(ca)]) == 0
    assert "INTACT" in capsys.readouterr().out
    # the README's check without our software agrees
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(io.BytesIO(stamped)) as archive:
        archive.extractall(unzipped)
    shown = subprocess.run(
        [
            str(OPENSSL),
            "ts",
            "-verify",
            "-data",
            "manifest.json",
            "-in",
            "manifest.tsr",
            "-CAfile",
            str(ca),
        ],
        cwd=unzipped,
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0 and "Verification: OK" in shown.stdout


@needs_openssl
def test_stored_replies_that_do_not_belong_fail(pack: bytes, tsa: LocalTsa) -> None:
    tsq = read(pack, "manifest.tsq")
    good = tsa.reply(tsq)
    request = parse_timestamp_request(tsq)
    other_data = tsa.reply(
        timestamp_request(hashlib.sha256(b"other").digest(), nonce=request.nonce)
    )
    other_nonce = tsa.reply(timestamp_request(request.digest, nonce=(request.nonce or 0) + 1))
    cases = {
        "imprint": (other_data, "imprint"),
        "nonce": (other_nonce, "nonce"),
        "signature": (flip(good, -5), "signature"),
        "garbage": (b"not a reply", "TimeStampResp"),
    }
    for label, (tsr, says) in cases.items():
        problems = {c.path: c.message for c in verify_pack(add_timestamp_reply(pack, tsr)).problems}
        assert list(problems) == ["manifest.tsr"], label
        assert says in problems["manifest.tsr"], (label, problems)
    stranger_ca = LocalTsa(tsa.dir / "stranger").ca_pem
    result = verify_pack(add_timestamp_reply(pack, good), tsa_roots=(stranger_ca,))
    assert [c.path for c in result.problems] == ["manifest.tsr"]
    assert "not at the CA given" in result.problems[0].message


@needs_openssl
def test_a_second_stamp_replaces_the_first(pack: bytes, tsa: LocalTsa) -> None:
    tsq = read(pack, "manifest.tsq")
    twice = add_timestamp_reply(add_timestamp_reply(pack, tsa.reply(tsq)), tsa.reply(tsq))
    names = zipfile.ZipFile(io.BytesIO(twice)).namelist()
    assert names.count("manifest.tsr") == 1
    assert verify_pack(twice).ok


def test_stamp_errors_are_clear(
    pack: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TimestampError, match="cannot reach the TSA"):
        send_request(b"x", f"http://127.0.0.1:{port}/", timeout_s=2.0)
    with pytest.raises(TimestampError, match="http"):
        send_request(b"x", "ftp://tsa.example/")
    path = tmp_path / "pack.zip"
    path.write_bytes(pack)
    assert cli.main(["stamp", str(path), "--tsa", f"http://127.0.0.1:{port}/"]) == 1
    assert "cannot reach the TSA" in capsys.readouterr().err
    assert path.read_bytes() == pack  # nothing lost
    (tmp_path / "not.zip").write_bytes(b"plain text")
    assert cli.main(["stamp", str(tmp_path / "not.zip"), "--tsa", "http://127.0.0.1:1/"]) == 1
    assert "manifest.tsq" in capsys.readouterr().err


def test_check_reply_without_a_tsa_token() -> None:
    check = check_timestamp_reply(b"\x30\x00", digest=b"\0" * 32, nonce=None)
    assert not check.ok and check.problems
