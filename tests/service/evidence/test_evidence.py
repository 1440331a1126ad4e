"""Evidence packs (issue 6): contents and schema, verification and tampering, PDF, CLI, keys."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.complaint import CN_12321_TYPES
from pipeline.detector import Detector
from pipeline.limits import load_error_rates
from pipeline.report import CaseInfo
from pipeline.types import Audio, AudioInfo, Evidence, ModelInfo, Transcript, Verdict
from service import cli
from service.evidence import pack as pack_mod
from service.evidence import signing as keys
from service.evidence.pack import build_evidence, build_pack, verify_pack
from service.evidence.pdf import FontNotFoundError, find_cjk_font
from service.evidence.timestamp import parse_timestamp_request, timestamp_request
from service.evidence.verify import UNLISTED
from tests import factories
from tests.conftest import synthesize
from tests.factories import make_audio_info, make_provenance, make_transcript
from tests.fakes import FakeTextClassifier

try:
    find_cjk_font()
    HAS_FONT = True
except FontNotFoundError:
    HAS_FONT = False
pytestmark = pytest.mark.skipif(
    not HAS_FONT, reason="no CJK font: apt-get install -y fonts-wqy-microhei"
)

SR = 16_000
CALLEE = "13812345678"
CN_ID = "11010519491231002X"
RECORDING = "recording/original.wav"
CALLER_SAYS = (
    "王先生您好，我是平安普惠的客服，您3月5号在我们平台申请过一笔贷款",
    f"核对一下，您的手机号{CALLEE}，身份证号{CN_ID}，家住朝阳区建国路88号对吧",
    "现在有一笔二十万的额度，按1了解详情，回复TD退订",
)


def wav_bytes(samples: np.ndarray, sr: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def caller_transcript() -> Transcript:
    return make_transcript(
        "zh",
        *((0.3 + 2.0 * i, 1.9 + 2.0 * i, text) for i, text in enumerate(CALLER_SAYS)),
        compression_ratio=1.3,
    )


def make_verdict(original: bytes) -> Verdict:
    info = make_audio_info(
        name=f"call_{CALLEE}.wav",
        sha256=hashlib.sha256(original).hexdigest(),
        size_bytes=len(original),
        container="wav",
        codec="pcm_s16le",
        sample_rate_hz=SR,
        duration_s=6.0,
    )
    evidence_items = (
        Evidence(
            "structure", "replayed_speech_s", 1.6, 1.4, "A 1.6 s prompt is replayed.", (4.3, 5.9)
        ),
        Evidence(
            "text", "scripted_phrase", 2.0, 1.1, "IVR phrasing: '按1', '回复TD退订'.", (4.3, 5.9)
        ),
        Evidence(
            "acoustic", "pitch_std_st", 0.9, 0.8, "Pitch varies by 0.9 semitones only.", (0.3, 5.9)
        ),
        Evidence("acoustic", "jitter_local_pct", 1.7, -0.3, "Jitter is in the human range.", None),
    )
    provenance = make_provenance(
        models=(
            ModelInfo("asr", "whisper-base", "a" * 64),
            ModelInfo("text", "rules-v1", "b" * 64),
        ),
        config_hash="0123456789abcdef",
        fusion_method="hand-set weights (untrained, not calibrated)",
        libraries=(("numpy", np.__version__),),
    )
    return factories.make_verdict(
        robot_probability=0.91,
        sales_probability=0.95,
        evidence=evidence_items,
        transcript=caller_transcript(),
        audio=info,
        provenance=provenance,
    )


CASE = CaseInfo(
    caller_number="+86 400 123 4567", callee_number=CALLEE, call_time="2024-05-01T14:30:00+08:00"
)


@pytest.fixture(scope="module")
def recording() -> tuple[bytes, Audio]:
    samples = synthesize("robot", sr=SR, duration_s=6.0, rng=np.random.default_rng(6))
    original = wav_bytes(samples)
    info = make_verdict(original).audio
    return original, Audio(info, samples[None, :].astype(np.float32))


@pytest.fixture(scope="module")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def pack(recording: tuple[bytes, Audio], signing_key: Ed25519PrivateKey) -> bytes:
    original, audio = recording
    return build_pack(
        original,
        make_verdict(original),
        CASE,
        signing_key=signing_key,
        audio=audio,
        settings={"asr": {"backend": "faster", "languages": ("zh",)}},
    )


def read(pack_bytes: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(pack_bytes)) as archive:
        return archive.read(name)


def rezip(pack_bytes: bytes, change: Callable[[str, bytes], bytes | None]) -> bytes:
    """A copy of the pack with ``change(name, data)`` applied (None drops the file)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(pack_bytes)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = change(info.filename, src.read(info.filename))
            if data is not None:
                dst.writestr(info, data)
    return out.getvalue()


def flip(data: bytes, at: int = -1) -> bytes:
    i = at % len(data)
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


# --- contents and schema ------------------------------------------------------------------------
def test_pack_contents(pack: bytes, recording: tuple[bytes, Audio]) -> None:
    original, _ = recording
    with zipfile.ZipFile(io.BytesIO(pack)) as archive:
        names = set(archive.namelist())
    assert names == {
        RECORDING,
        f"{RECORDING}.sha256",
        "report.pdf",
        "report.json",
        "complaint.json",
        "figures/overview.png",
        "README.txt",
        "SHA256SUMS",
        "manifest.json",
        "manifest.sig",
        "public_key.pem",
        "manifest.tsq",
    }
    assert read(pack, RECORDING) == original  # byte for byte
    digest = hashlib.sha256(original).hexdigest()
    assert read(pack, f"{RECORDING}.sha256").decode().split()[0] == digest
    manifest = json.loads(read(pack, "manifest.json"))
    assert manifest["schema"] == "robocall-evidence-manifest"
    assert manifest["schema_version"] == pack_mod.PACK_SCHEMA_VERSION
    listed = {e["path"]: e for e in manifest["files"]}
    assert set(listed) == names - set(UNLISTED)
    for path, entry in listed.items():
        data = read(pack, path)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size_bytes"] == len(data)
    assert listed[RECORDING]["role"] == "original_recording"
    public = keys.load_public_pem(read(pack, "public_key.pem"))
    assert manifest["signature"]["public_key_sha256"] == keys.fingerprint(public)
    assert read(pack, "figures/overview.png").startswith(b"\x89PNG")


def test_report_json_schema_and_masking(pack: bytes, recording: tuple[bytes, Audio]) -> None:
    report = json.loads(read(pack, "report.json"))
    assert report["schema"] == "robocall-evidence-report"
    assert report["schema_version"] == pack_mod.PACK_SCHEMA_VERSION
    verdict = report["verdict"]
    assert set(verdict) == set(make_verdict(recording[0]).to_dict())  # = Verdict.to_dict()
    assert verdict["audio"]["sha256"] == hashlib.sha256(recording[0]).hexdigest()
    assert verdict["robot_probability"] == 0.91 and verdict["label"] == "electronic_sales_robot"
    assert report["case"]["caller_number"] == "+86 400 123 4567"
    assert report["case"]["callee_number"] == "138****5678"
    assert set(report["summary"]) == set(report["limits"]) == {"zh", "en"}
    assert [r["name"] for r in report["reasons"]][:2] == ["replayed_speech_s", "scripted_phrase"]
    privacy = report["privacy"]
    assert privacy["masked"] is True
    assert {"phone", "cn_id", "name", "address"} <= set(privacy["masked_counts"])
    recited = {f["kind"] for f in privacy["caller_recited_personal_data"]}
    assert {"name", "phone", "cn_id", "history"} <= recited
    assert report["settings"]["asr.backend"] == "faster"
    for name in ("report.json", "complaint.json", "manifest.json", "README.txt"):
        blob = read(pack, name).decode()
        assert CALLEE not in blob and CN_ID not in blob and "建国路" not in blob, name


def test_complaint_json(pack: bytes) -> None:
    complaint = json.loads(read(pack, "complaint.json"))
    cn, us = complaint["cn_12321"], complaint["us_ftc"]
    assert (
        complaint["recording_sha256"]
        == json.loads(read(pack, "report.json"))["verdict"]["audio"]["sha256"]
    )
    assert complaint["complainant"]["own_number"] == "138****5678"
    assert complaint["complainant"]["own_number_masked"] is True
    assert complaint["call"]["stated_by"] == "complainant"
    assert complaint["call"]["time_zone"] == "UTC+08:00"
    assert complaint["call"]["company_named_in_call"] == "平安普惠"
    assert cn["reported_number"] == us["caller_phone_number"] == "+86 400 123 4567"
    assert cn["call_time_beijing"] == "2024-05-01 14:30:00"
    assert cn["report_type"] == "商业营销" and cn["report_type"] in CN_12321_TYPES
    assert cn["content_summary"] and "姓名" in cn["personal_data_recited"]
    assert "［姓名］" in cn["content_summary"] and "[name]" in us["description"]
    assert us["date_of_call"] == "05/01/2024" and us["time_of_call"] == "02:30 PM"
    assert us["recorded_message_or_robocall"] == "yes"
    assert us["subject"].startswith("Reducing your debt")
    assert us["your_phone_number"] == "138****5678"


def test_unmasked_copy_is_a_separate_file(
    recording: tuple[bytes, Audio], signing_key: Ed25519PrivateKey
) -> None:
    original, audio = recording
    pack, private = build_evidence(
        original,
        make_verdict(original),
        CASE,
        signing_key=signing_key,
        audio=audio,
        private_copy=True,
    )
    assert private is not None
    names = zipfile.ZipFile(io.BytesIO(pack)).namelist()
    assert not any(n.startswith("unmasked/") for n in names)
    assert all(CALLEE not in read(pack, n).decode("utf-8", "replace") for n in names)
    assert CALLEE in read(private, "report.json").decode()
    complaint = json.loads(read(private, "complaint.json"))
    assert complaint["cn_12321"]["complainant_number"] == CALLEE  # 12321 verifies it by SMS
    assert complaint["complainant"]["own_number_masked"] is False
    assert verify_pack(pack).ok


def test_pack_refuses_a_recording_that_is_not_the_verdicts(
    recording: tuple[bytes, Audio], signing_key: Ed25519PrivateKey
) -> None:
    original, audio = recording
    with pytest.raises(ValueError, match="wrong file"):
        build_pack(
            original + b"\0", make_verdict(original), CASE, signing_key=signing_key, audio=audio
        )


# --- verification -------------------------------------------------------------------------------
def test_fresh_pack_verifies(pack: bytes, signing_key: Ed25519PrivateKey) -> None:
    result = verify_pack(pack, trusted_public_key=keys.public_pem(signing_key.public_key()))
    assert result.ok, result.problems
    assert result.fingerprint == keys.fingerprint(signing_key.public_key())


def _tamper_manifest(pack: bytes) -> bytes:
    """Re-list a changed report in the manifest (what a forger would do): the signature breaks."""
    forged = read(pack, "report.json") + b" "
    manifest = json.loads(read(pack, "manifest.json"))
    for entry in manifest["files"]:
        if entry["path"] == "report.json":
            entry["sha256"] = hashlib.sha256(forged).hexdigest()
    replace = {"report.json": forged, "manifest.json": json.dumps(manifest).encode()}
    return rezip(pack, lambda name, data: replace.get(name, data))


TAMPERINGS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "audio byte": (
        lambda p: rezip(p, lambda n, d: flip(d, 1000) if n == RECORDING else d),
        RECORDING,
    ),
    "report": (
        lambda p: rezip(
            p,
            lambda n, d: (
                d.replace(b'"robot_probability": 0.91', b'"robot_probability": 0.99')
                if n == "report.json"
                else d
            ),
        ),
        "report.json",
    ),
    "manifest": (_tamper_manifest, "manifest.sig"),
    "signature": (
        lambda p: rezip(p, lambda n, d: flip(d) if n == "manifest.sig" else d),
        "manifest.sig",
    ),
    "added file": (lambda p: _add_file(p), "extra.txt"),
    "removed file": (
        lambda p: rezip(p, lambda n, d: None if n == "complaint.json" else d),
        "complaint.json",
    ),
}


def _add_file(pack: bytes) -> bytes:
    out = io.BytesIO(pack)
    with zipfile.ZipFile(out, "a") as archive:
        archive.writestr("extra.txt", b"added later")
    return out.getvalue()


@pytest.mark.parametrize("kind", list(TAMPERINGS))
def test_each_tampering_fails_naming_the_file(pack: bytes, kind: str) -> None:
    tamper, named = TAMPERINGS[kind]
    result = verify_pack(tamper(pack))
    assert not result.ok
    assert named in {c.path for c in result.problems}, result.problems


def test_a_raw_byte_flip_inside_the_zip_names_the_file(pack: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(pack)) as archive:
        info = archive.getinfo(RECORDING)
    data_start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    result = verify_pack(flip(pack, data_start + 500))
    assert not result.ok
    assert RECORDING in {c.path for c in result.problems}


def test_other_signers_key_and_garbage_fail(pack: bytes) -> None:
    stranger = keys.public_pem(Ed25519PrivateKey.generate().public_key())
    result = verify_pack(pack, trusted_public_key=stranger)
    assert [c.path for c in result.problems] == ["public_key.pem"]
    assert not verify_pack(b"not a zip at all").ok


def test_timestamp_request_is_rfc3161_over_the_manifest(pack: bytes, tmp_path: Path) -> None:
    tsq = read(pack, "manifest.tsq")
    request = parse_timestamp_request(tsq)
    assert request.version == 1 and request.cert_req and request.nonce is not None
    assert request.hash_algorithm == "sha256"
    assert request.digest == hashlib.sha256(read(pack, "manifest.json")).digest()
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed: DER structure checked by our own parser only")
    (tmp_path / "m.tsq").write_bytes(tsq)
    shown = subprocess.run(
        ["openssl", "ts", "-query", "-in", str(tmp_path / "m.tsq"), "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Hash Algorithm: sha256" in shown and "Certificate required: yes" in shown
    digest_hex = request.digest.hex()
    assert digest_hex[:8] in shown.replace(" ", "").replace("-", "")


def test_timestamp_request_round_trip_and_garbage() -> None:
    digest = hashlib.sha256(b"manifest").digest()
    request = parse_timestamp_request(timestamp_request(digest, nonce=42))
    assert (request.version, request.digest, request.nonce) == (1, digest, 42)
    assert request.cert_req
    with pytest.raises(ValueError):
        parse_timestamp_request(b"\x30\x03\x02\x01")
    with pytest.raises(ValueError, match="32 bytes"):
        timestamp_request(b"short")


# --- PDF ----------------------------------------------------------------------------------------
def test_pdf_pages_text_and_rendering(pack: bytes, tmp_path: Path) -> None:
    from pypdf import PdfReader

    pdf = read(pack, "report.pdf")
    pages = [p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages]
    assert len(pages) in (5, 6)  # summary, reasons, figure, transcript, method (+ limits)
    squeeze = [t.replace(" ", "").replace("\n", "") for t in pages]
    assert "通话录音分析报告" in squeeze[0] and "Callrecordinganalysisreport" in squeeze[0]
    assert "电子营销机器人" in squeeze[0] and "91%" in squeeze[0] and "138****5678" in squeeze[0]
    assert "Reasonsfortheverdict" in squeeze[1] and "R1" in squeeze[1]
    assert "Therecording,drawn" in squeeze[2]
    assert "Transcriptwithtimestamps" in squeeze[3] and "0:00.3" in squeeze[3]
    assert "按1了解详情" in squeeze[3] and "［身份证号］" in squeeze[3]
    assert "whisper-base" in squeeze[4] and "Limitsofthemethod" in "".join(squeeze[4:])
    rates = load_error_rates()
    assert rates is not None
    quoted = f"{rates.composed_people_called_robots * 100:.1f}%的真人被判为机器人"
    assert quoted in "".join(squeeze[4:])  # the published rate, from error_rates.json
    assert "投诉人陈述，录音本身无法证明" in squeeze[0]  # numbers and time: their statement
    assert "100%" not in "".join(squeeze)
    assert all(CALLEE not in t and CN_ID not in t for t in squeeze)
    assert not any(line.strip().startswith("。") for t in pages for line in t.splitlines())
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) not installed: page not rendered")
    (tmp_path / "report.pdf").write_bytes(pdf)
    subprocess.run(
        [
            "pdftoppm",
            "-f",
            "1",
            "-l",
            "1",
            "-r",
            "60",
            "-png",
            str(tmp_path / "report.pdf"),
            str(tmp_path / "page"),
        ],
        check=True,
    )
    png = next(tmp_path.glob("page*.png"))
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 20_000


def test_overview_figure_stereo_and_without_cjk_font() -> None:
    from service.evidence.plots import render_overview

    rng = np.random.default_rng(2)
    caller = synthesize("robot", sr=SR, duration_s=3.0, rng=rng)
    callee = synthesize("human", sr=SR, duration_s=3.0, rng=rng)
    info = AudioInfo("s.wav", "0" * 64, 1, "wav", "pcm_s16le", SR, 2, 3.0, 1, "talks first")
    audio = Audio(info, np.stack([callee, caller]).astype(np.float32))
    verdict = make_verdict(b"")
    for font in (find_cjk_font(), None):
        png = render_overview(audio, verdict, lang="en", font_path=font)
        assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_overview_shades_only_the_highlighted_spans(
    recording: tuple[bytes, Audio], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The figure shades pipeline.highlights.highlight_spans, not every span with weight > 0:
    a cue spanning most of the call (pitch over 0.3-5.9 s of 6 s) is no place in it."""
    from service.evidence import plots

    original, audio = recording
    verdict = make_verdict(original)
    whole_call_only = dataclasses.replace(
        verdict, evidence=tuple(e for e in verdict.evidence if e.name == "pitch_std_st")
    )
    shaded = {v: plots.render_overview(audio, v, lang="en") for v in (verdict, whole_call_only)}
    monkeypatch.setattr(plots, "highlight_spans", lambda v: ())
    plain = {v: plots.render_overview(audio, v, lang="en") for v in (verdict, whole_call_only)}
    assert shaded[verdict] != plain[verdict]  # replayed prompt and IVR phrase at 4.3-5.9 s
    assert shaded[whole_call_only] == plain[whole_call_only]


# --- command line -------------------------------------------------------------------------------
class FakeTranscriber:
    model_info = ModelInfo("asr", "fake-asr", "0" * 64)

    def transcribe(self, samples: np.ndarray) -> Transcript:
        return caller_transcript()


@pytest.fixture
def key_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "keys"
    monkeypatch.setenv("ROBOCALL_KEY_DIR", str(directory))
    return directory


def fake_cli_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, seed: int) -> Path:
    """A 4 s robot-like WAV, and the CLI's detector loader swapped for fakes."""
    import models.loading

    monkeypatch.setattr(
        models.loading,
        "load_detector",
        lambda config: Detector(FakeTranscriber(), FakeTextClassifier(), config),
    )
    call = tmp_path / "call.wav"
    samples = synthesize("robot", sr=8000, duration_s=4.0, rng=np.random.default_rng(seed))
    call.write_bytes(wav_bytes(samples, sr=8000))
    return call


def test_cli_evidence_then_verify(
    tmp_path: Path,
    key_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    call = fake_cli_call(tmp_path, monkeypatch, seed=1)
    out = tmp_path / "out" / "pack.zip"
    assert (
        cli.main(
            [
                "evidence",
                str(call),
                "--out",
                str(out),
                "--caller",
                "4001234567",
                "--callee",
                CALLEE,
                "--time",
                "2024-05-01T14:30+08:00",
                "--lang",
                "en",
            ]
        )
        == 0
    )
    printed = capsys.readouterr()
    assert "pack.zip" in printed.out and "robocall verify" in printed.out
    assert "created a signing key" in printed.err
    assert (key_dir / keys.PRIVATE_KEY_FILE).is_file()
    assert read(out.read_bytes(), "recording/original.wav") == call.read_bytes()
    assert json.loads(read(out.read_bytes(), "report.json"))["lang"] == "en"

    assert cli.main(["verify", str(out)]) == 0
    assert "INTACT" in capsys.readouterr().out
    out.write_bytes(rezip(out.read_bytes(), lambda n, d: d + b"\n" if n == "report.pdf" else d))
    assert cli.main(["verify", str(out)]) == 1
    printed_out = capsys.readouterr().out
    assert "NOT INTACT" in printed_out and "report.pdf" in printed_out
    assert cli.main(["verify", "--json", str(out)]) == 1
    assert json.loads(capsys.readouterr().out)["intact"] is False


def test_cli_usage_errors(tmp_path: Path, key_dir: Path) -> None:
    assert (
        cli.main(
            [
                "evidence",
                str(tmp_path / "x.wav"),
                "--out",
                str(tmp_path / "p.zip"),
                "--time",
                "yesterday",
            ]
        )
        == 2
    )
    assert (
        cli.main(["evidence", str(tmp_path / "missing.wav"), "--out", str(tmp_path / "p.zip")]) == 1
    )
    assert cli.main(["verify", str(tmp_path / "missing.zip")]) == 1
    future = "2099-01-01T10:00+08:00"
    for flags in (["--caller", "12"], ["--callee", "call me"], ["--time", future]):
        args = ["evidence", str(tmp_path / "x.wav"), "--out", str(tmp_path / "p.zip"), *flags]
        assert cli.main(args) == 2, flags
    assert not (tmp_path / "p.zip").exists()


def test_cli_unmasked_copy_is_written_beside_the_pack(
    tmp_path: Path,
    key_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    call = fake_cli_call(tmp_path, monkeypatch, seed=3)
    out = tmp_path / "case.zip"
    args = [
        "evidence",
        str(call),
        "--out",
        str(out),
        "--callee",
        CALLEE,
        "--unmasked",
        "--threshold",
        "0.7",
        "--on-dnc-list",
        "--no-asked-to-stop",
    ]
    assert cli.main(args) == 0
    private = tmp_path / "case.private.zip"
    assert "case.private.zip" in capsys.readouterr().out
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert CALLEE in read(private.read_bytes(), "report.json").decode()
    assert CALLEE not in out.read_bytes().decode("latin-1")
    complaint = json.loads(read(out.read_bytes(), "complaint.json"))
    assert complaint["us_ftc"]["on_do_not_call_registry"] == "yes"
    assert complaint["us_ftc"]["asked_to_stop"] == "no"
    assert cli.main(["verify", str(out)]) == 0


def test_non_default_threshold_is_on_page_one(
    recording: tuple[bytes, Audio], signing_key: Ed25519PrivateKey
) -> None:
    from pypdf import PdfReader

    original, audio = recording
    verdict = dataclasses.replace(make_verdict(original), threshold=0.7)
    pack = build_pack(original, verdict, CASE, signing_key=signing_key, audio=audio)
    page = PdfReader(io.BytesIO(read(pack, "report.pdf"))).pages[0].extract_text()
    squeezed = page.replace(" ", "").replace("\n", "")
    assert "判定阈值设为70%，默认为50%" in squeezed
    assert "Thedecisionthresholdwassetto70%" in squeezed
    default = read(
        build_pack(original, make_verdict(original), CASE, signing_key=signing_key, audio=audio),
        "report.pdf",
    )
    first = PdfReader(io.BytesIO(default)).pages[0].extract_text().replace(" ", "")
    assert "默认为" not in first


def test_a_mono_call_s_pack_names_the_voice_taken_as_the_caller(
    recording: tuple[bytes, Audio], signing_key: Ed25519PrivateKey
) -> None:
    from pypdf import PdfReader

    original, audio = recording
    turns = ((2.0, 5.5), (9.0, 12.0), (70.0, 71.5))
    verdict = dataclasses.replace(make_verdict(original), caller_turns=turns)
    assert verdict.audio.channels == 1
    pack = build_pack(original, verdict, CASE, signing_key=signing_key, audio=audio)
    pages = PdfReader(io.BytesIO(read(pack, "report.pdf"))).pages
    squeezed = "".join(p.extract_text() for p in pages).replace(" ", "").replace("\n", "")
    assert "单声道录音，已区分两个声音：来电方判为说话8秒、共3段、首次在0:02.0的那一方" in squeezed
    report = json.loads(read(pack, "report.json"))
    assert report["verdict"]["caller_turns"] == [list(t) for t in turns]


def test_a_pack_says_which_telephone_tones_were_left_out(
    recording: tuple[bytes, Audio], signing_key: Ed25519PrivateKey
) -> None:
    from pypdf import PdfReader

    original, audio = recording
    verdict = dataclasses.replace(make_verdict(original), tones=((0.0, 1.0), (5.0, 6.0)))
    pack = build_pack(original, verdict, CASE, signing_key=signing_key, audio=audio)
    pages = PdfReader(io.BytesIO(read(pack, "report.pdf"))).pages
    squeezed = "".join(p.extract_text() for p in pages).replace(" ", "").replace("\n", "")
    assert "电话信号音（回铃音、忙音或提示音）共2.0秒、首次在0:00.0" in squeezed
    assert json.loads(read(pack, "report.json"))["verdict"]["tones"] == [[0.0, 1.0], [5.0, 6.0]]


def test_an_uncertain_verdict_is_marked_not_sufficient_alone_for_a_complaint(
    recording: tuple[bytes, Audio], signing_key: Ed25519PrivateKey
) -> None:
    """Issue 13: in the band where the detector cannot tell, page 1 and report.json say so."""
    from pypdf import PdfReader

    from pipeline.types import Label

    original, audio = recording
    decided = build_pack(
        original, make_verdict(original), CASE, signing_key=signing_key, audio=audio
    )
    caller = json.loads(read(decided, "report.json"))["caller"]
    assert caller == {"certainty": "robot", "sufficient_alone_for_complaint": True, "notice": None}
    verdict = dataclasses.replace(
        make_verdict(original), label=Label.HUMAN, robot_probability=0.7, person_threshold=0.2,
        threshold=0.9,
    )  # fmt: skip
    pack = build_pack(original, verdict, CASE, signing_key=signing_key, audio=audio)
    report = json.loads(read(pack, "report.json"))
    assert report["caller"]["certainty"] == "uncertain"
    assert report["caller"]["sufficient_alone_for_complaint"] is False
    assert "not sufficient for a complaint" in report["caller"]["notice"]["en"]
    assert report["verdict"]["caller_certainty"] == "uncertain"
    complaint = json.loads(read(pack, "complaint.json"))  # the forms leave the caller unknown
    assert complaint["verdict"]["caller_certainty"] == "uncertain"
    assert complaint["us_ftc"]["recorded_message_or_robocall"] == ""
    assert complaint["cn_12321"]["caller_kind"] == "" and complaint["call"]["caller_kind"] == ""
    page = PdfReader(io.BytesIO(read(pack, "report.pdf"))).pages[0].extract_text()
    squeezed = page.replace(" ", "").replace("\n", "")
    assert "Thisverdictaloneisnotsufficientforacomplaint" in squeezed
    assert "仅凭这份判断不足以投诉来电是机器人" in squeezed
    assert "Cannottellwhetherarobotoralivepersoncalled" in squeezed
    assert [c.message for c in verify_pack(pack).checks if not c.ok] == []


# --- keys ---------------------------------------------------------------------------------------
def test_keys_create_show_export(
    key_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["keys", "show"]) == 1  # none yet
    assert cli.main(["keys", "create"]) == 0
    path = key_dir / keys.PRIVATE_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    fp = keys.fingerprint(keys.load_signing_key().public_key())
    assert keys.readable_fingerprint(fp) in capsys.readouterr().out
    assert cli.main(["keys", "create"]) == 1  # never overwritten silently
    assert cli.main(["keys", "export-public", "--out", str(tmp_path / "pub.pem")]) == 0
    assert keys.fingerprint(keys.load_public_pem((tmp_path / "pub.pem").read_bytes())) == fp
    assert cli.main(["keys", "create", "--force"]) == 0
    assert keys.fingerprint(keys.load_signing_key().public_key()) != fp
    os.chmod(path, 0o644)
    with pytest.raises(keys.SigningKeyError, match="chmod 600"):
        keys.load_signing_key()


def test_no_chinese_line_starts_with_closing_punctuation() -> None:
    from reportlab.lib.styles import ParagraphStyle

    from pipeline.report import text
    from service.evidence.pdf import _CANNOT_START, CjkParagraph, _line_start, _register_font

    style = ParagraphStyle(
        "zh", fontName=_register_font(find_cjk_font()), fontSize=9.5, leading=14, wordWrap="CJK"
    )
    for key in ("figure_caption", "reasons_intro", "verify_text", "transcript_note"):
        for width in range(220, 520, 9):
            paragraph = CjkParagraph(text(key, "zh"), style)
            paragraph.wrap(width, 1000)
            starts = [_line_start(line) for line in paragraph.blPara.lines[1:]]
            assert not _CANNOT_START.intersection(starts), (key, width, starts)
