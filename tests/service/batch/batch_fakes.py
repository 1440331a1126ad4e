"""Batch test helpers: a picklable fake detector factory and generated "prompts" and calls.

The fake implements what the batch workers need (``config`` and ``detect_audio``) and builds a
valid :class:`Verdict` from two fake cues through the real fusion (``pipeline.fuse.fuse``, the
hand-set sum, so that the driver can fuse prompt evidence into it), deterministically from the
recording's bytes, so the local pool and Ray give identical rows. Bad files fail in the real
decoder (``pipeline.audio.load_audio``) before the fake is asked, exactly as with the real
detector.

``synth_prompt(seed)`` is a speech-like signal (syllables with gliding f0, random formants,
consonant noise bursts, pauses) that differs from seed to seed the way two recorded prompts do;
``make_call`` puts a prompt into a call (leading silence, level, noise floor, trailing speech)
and encodes it with ``tests.conftest.encode`` (G.711 WAV, MP3, AMR-NB, ...).
"""

from __future__ import annotations

import csv
import hashlib
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pipeline.config import DetectorConfig
from pipeline.fuse import FUSION_METHOD, fuse
from pipeline.types import (
    AcousticCues,
    Audio,
    Evidence,
    ModelInfo,
    TextScore,
    Verdict,
)
from tests.conftest import ENCODINGS, encode
from tests.factories import make_provenance, make_transcript

RATE_HZ = 16_000
TOPICS = ("real_estate", "insurance", "loan", "education")
FIXED_TIME = "2026-01-01T00:00:00+00:00"  # provenance time, so that reruns compare equal


@dataclass(frozen=True)
class FakeBatchDetector:
    config: DetectorConfig = field(default_factory=DetectorConfig)
    delay_s: float = 0.0  # sleep per call (for kill/resume tests)
    work_s_per_audio_s: float = 0.0  # CPU work per second of audio (for the benchmark)
    # the lower edge of an uncertain band below the 0.5 threshold, as a fitted fusion gives;
    # None: no band (the hand-set fusion)
    person_threshold: float | None = None

    def detect_audio(self, audio: Audio) -> Verdict:
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.work_s_per_audio_s:
            _burn_cpu(audio.caller(), self.work_s_per_audio_s * audio.info.duration_s)
        digest = hashlib.sha256(audio.info.sha256.encode()).digest()
        p = digest[0] / 255.0
        topic = TOPICS[digest[1] % len(TOPICS)]
        end = round(audio.info.duration_s, 3)
        transcript = make_transcript(
            "zh", (0.0, end, f"call {audio.info.sha256[:8]}"), language_probability=0.99
        )
        flatness = Evidence(
            "acoustic", "fake_flatness", p, 2.0 * p - 1.0, "A fake cue.", (0.0, end)
        )
        verdict = fuse(
            text=TextScore(
                sales_probability=0.9,
                topic=topic,
                topic_scores=((topic, 0.9),),
                evidence=(Evidence("text", "fake_topic", 1.0, 0.1, f"Topic {topic}."),),
            ),
            cues=AcousticCues(evidence=(flatness,), speech_s=end),
            transcript=transcript,
            other_transcript=None,
            audio=audio.info,
            config=self.config.fusion,
            provenance=make_provenance(
                package_version="0+test",
                models=(
                    ModelInfo("asr", "fake-asr", "a" * 64),
                    ModelInfo("text", "fake", "b" * 64),
                ),
                config_hash=self.config.config_hash(),
                fusion_method=FUSION_METHOD,
                libraries=(),
                analysed_at_utc=FIXED_TIME,
            ),
        )
        if self.person_threshold is None:
            return verdict
        return replace(verdict, person_threshold=self.person_threshold)


@dataclass(frozen=True)
class FakeFactory:
    """``detector_factory`` for the engines: picklable (module level), so spawn and Ray work."""

    delay_s: float = 0.0
    work_s_per_audio_s: float = 0.0
    person_threshold: float | None = None

    def __call__(self, config: DetectorConfig) -> FakeBatchDetector:
        return FakeBatchDetector(
            config, self.delay_s, self.work_s_per_audio_s, self.person_threshold
        )


@dataclass(frozen=True)
class BrokenFactory:
    """A ``detector_factory`` that fails as a worker without the model weights would."""

    def __call__(self, config: DetectorConfig) -> FakeBatchDetector:
        raise FileNotFoundError("no weights under models/")


def _burn_cpu(samples: np.ndarray, seconds: float) -> None:
    """Spend about ``seconds`` of CPU on FFTs, like a model would (result unused)."""
    deadline = time.process_time() + seconds
    block = np.resize(samples, 1 << 14).astype(np.float64)
    while time.process_time() < deadline:
        block = np.abs(np.fft.irfft(np.fft.rfft(block)))


def synth_prompt(seed: int, *, duration_s: float = 4.0) -> np.ndarray:
    """A speech-like prompt, float32 [shape=(n,)] at 16 kHz, peak 0.5; one per seed.

    Syllables of 80-220 ms: a gliding f0 (90-260 Hz) whose harmonics pass three formants that
    move from one vowel to the next, with a consonant noise burst before half of them and short
    pauses between; about as many spectral landmarks per second as read speech.
    """
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    total = 0
    while total < duration_s * RATE_HZ:
        if rng.random() < 0.5:  # a consonant: 20-60 ms of band-limited noise
            noise = rng.normal(0.0, 1.0, int(rng.uniform(0.02, 0.06) * RATE_HZ))
            spectrum = np.fft.rfft(noise)
            freqs = np.fft.rfftfreq(noise.size, 1.0 / RATE_HZ)
            spectrum[(freqs < rng.uniform(1200, 2500)) | (freqs > 3800)] = 0
            parts.append(0.2 * np.fft.irfft(spectrum, noise.size) / max(1e-9, noise.std()))
        n = int(rng.uniform(0.08, 0.22) * RATE_HZ)
        ramp = np.linspace(0.0, 1.0, n)
        f0 = rng.uniform(90, 260) + (rng.uniform(90, 260) - rng.uniform(90, 260)) * ramp
        f0 = np.clip(f0, 80, 300)
        formants = [
            (a + (b - a) * ramp, bw)
            for (lo, hi, bw) in ((300, 900, 120.0), (900, 2200, 160.0), (2200, 3300, 220.0))
            for a, b in [rng.uniform(lo, hi, 2)]
        ]
        phase = 2 * np.pi * np.cumsum(f0) / RATE_HZ
        voiced = np.zeros(n)
        for k in range(1, int(3800 / f0.min()) + 1):
            f = k * f0
            gain = sum(np.exp(-0.5 * ((f - fc) / bw) ** 2) for fc, bw in formants) + 0.05
            voiced += np.where(f < 3800, gain / k**0.5, 0.0) * np.sin(k * phase)
        envelope = np.minimum(1.0, np.minimum(np.arange(n), n - np.arange(n)) / (0.015 * RATE_HZ))
        level = rng.uniform(0.4, 1.0)
        parts.append(level * voiced / max(1e-9, np.abs(voiced).max()) * envelope)
        if rng.random() < 0.4:
            parts.append(np.zeros(int(rng.uniform(0.02, 0.15) * RATE_HZ)))
        total = sum(p.size for p in parts)
    x = np.concatenate(parts)[: int(duration_s * RATE_HZ)]
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def make_call(
    path: Path,
    prompt: np.ndarray,
    *,
    fmt: str = "wav",
    gain_db: float = 0.0,
    lead_s: float = 0.5,
    tail: np.ndarray | None = None,
    seed: int = 0,
) -> Path:
    """Write a call: silence, the prompt at ``gain_db``, optional trailing speech, a noise floor.

    ``fmt`` is a key of ``tests.conftest.ENCODINGS``; the suffix of ``path`` is replaced.
    """
    rng = np.random.default_rng(seed)
    pieces = [np.zeros(int(lead_s * RATE_HZ)), prompt * 10 ** (gain_db / 20)]
    if tail is not None:
        pieces.append(tail)
    x = np.concatenate([*pieces, np.zeros(RATE_HZ // 4)])
    x = x + rng.normal(0.0, 10 ** (-60 / 20), x.size)  # -60 dBFS line noise
    out = path.with_suffix("." + ENCODINGS[fmt].ext)
    out.write_bytes(encode(np.clip(x, -1, 1).astype(np.float32), sr=RATE_HZ, fmt=fmt))
    return out


REPLAY_FORMATS = ("wav_mulaw", "amr_nb", "mp3", "wav_alaw", "wav")  # cycled over a prompt's calls
REPLAY_LEVELS_DB = (0.0, -12.0, -6.0, -20.0, -3.0)


def make_corpus(
    folder: Path,
    *,
    prompts: int = 3,
    replays: int = 3,
    live: int = 3,
    bad: bool = True,
    duration_s: float = 6.0,
) -> Path:
    """Write calls and a CSV manifest (returned) describing them.

    - ``prompts`` robot prompts, each replayed in ``replays`` calls from different caller numbers
      through different codecs and levels (call ids ``p<k>_<j>``, campaign ground truth ``p<k>``);
    - ``live`` calls whose audio is unique (``live<k>``);
    - with ``bad``: a text file named ``.wav``, an empty ``.wav``, and a manifest row whose file
      does not exist (ids ``notes``, ``empty``, ``missing``).

    Start times spread over three days; caller numbers are ``+8613800000<k>``.
    """
    audio_dir = folder / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    day0 = 1_767_225_600  # 2026-01-01T00:00:00Z

    def add(call_id: str, path: Path, caller: int) -> None:
        n = len(rows)
        rows.append({
            "call_id": call_id,
            "path": str(path.relative_to(folder)),
            "caller_number": f"+8613800000{caller:03d}",
            "callee_number": f"+8613900000{n:03d}",
            "start_time": str(day0 + n * 5_400 * 3),
            "duration_s": f"{duration_s:.1f}",
            "trunk": f"trunk-{n % 2}",
            "channel_layout": "mono",
        })  # fmt: skip

    for k in range(prompts):
        prompt = synth_prompt(1000 + k, duration_s=duration_s)
        for j in range(replays):
            path = make_call(
                audio_dir / f"p{k}_{j}",
                prompt,
                fmt=REPLAY_FORMATS[(k + j) % len(REPLAY_FORMATS)],
                gain_db=REPLAY_LEVELS_DB[j % len(REPLAY_LEVELS_DB)],
                lead_s=0.2 + 0.37 * j,
                seed=k * 97 + j,
            )
            add(f"p{k}_{j}", path, caller=k * replays + j)
    for k in range(live):
        path = make_call(audio_dir / f"live{k}", synth_prompt(5000 + k, duration_s=duration_s),
                         fmt="wav", seed=k)  # fmt: skip
        add(f"live{k}", path, caller=900 + k)
    if bad:
        (audio_dir / "notes.wav").write_text("minutes of the meeting, not a recording\n" * 20)
        add("notes", audio_dir / "notes.wav", caller=990)
        (audio_dir / "empty.wav").write_bytes(b"")
        add("empty", audio_dir / "empty.wav", caller=991)
        add("missing", audio_dir / "missing.wav", caller=992)
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest
