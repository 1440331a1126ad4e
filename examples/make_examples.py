"""Rebuild the small example recordings committed in ``examples/``.

Run once by a developer (needs ``../shared/data`` and Debian ``flite``); users never need it.

- ``robot_zh.amr``: a Mandarin dialer call as a phone records it (AMR-NB, 8 kHz): two TTS sales
  prompts from ``zhtts_sales`` spliced with digital silence between them, as auto-dialers do.
- ``robot_en.mp3``: an English robocall made with flite (voice slt), prompts spliced with digital
  silence, including a "press 1" line.
- ``human_zh.mp3``: spontaneous human Mandarin (MagicData speaker 5_3039, MIT-licensed repo).
- ``call_stereo.m4a``: a stereo carrier recording: robot caller on the left channel, a human voice
  on the right channel speaking in the gaps (the callee).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import soxr

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data" / "audio"
RATE_HZ = 16_000

ZH_PROMPTS = ("zhtts_sales/zh_sales_040_loan_fs2.flac", "zhtts_sales/zh_sales_043_loan_taco2.flac")
ZH_HUMAN = (
    "zh_HemingwayLee_mandarin-magicdata-viewer/backend__media__train__5_3039__5_3039_20231108001.flac",
    "zh_HemingwayLee_mandarin-magicdata-viewer/backend__media__train__5_3039__738941968.762064.wav_0004562560_0004822080.flac",
)
EN_LINES = (
    "Hello, this is an important message about your car's extended warranty.",
    "Our records show your factory warranty is about to expire. "
    "Press 1 now to speak with a warranty specialist, or press 9 to be removed from our list.",
)


def read(rel: str) -> np.ndarray:
    samples, rate = sf.read(SHARED / rel, dtype="float32", always_2d=False)
    return soxr.resample(samples, rate, RATE_HZ).astype(np.float32)


def flite(text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "x.wav"
        subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(wav)], check=True)
        samples, rate = sf.read(wav, dtype="float32")
    return soxr.resample(samples, rate, RATE_HZ).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE_HZ), dtype=np.float32)


def encode(path: Path, samples: np.ndarray, *, fmt: str, codec: str, rate: int, bit_rate: int):
    """Encode (channels, n) or (n,) float32 at 16 kHz into ``path`` with PyAV."""
    planar = np.atleast_2d(samples)
    layout = "mono" if planar.shape[0] == 1 else "stereo"
    planar = np.stack([soxr.resample(ch, RATE_HZ, rate) for ch in planar]).astype(np.float32)
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=stream.format.name, layout=layout, rate=rate)
        for piece in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(piece):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def main() -> None:
    a, b = (0.6 * read(p) / np.max(np.abs(read(p))) for p in ZH_PROMPTS)
    robot_zh = np.concatenate([silence(0.5), a, silence(1.5), b, silence(0.5)])
    encode(
        HERE / "robot_zh.amr",
        robot_zh,
        fmt="amr",
        codec="libopencore_amrnb",
        rate=8000,
        bit_rate=12_200,
    )

    lines = [0.6 * x / np.max(np.abs(x)) for x in map(flite, EN_LINES)]
    robot_en = np.concatenate([silence(0.4), lines[0], silence(1.2), lines[1], silence(0.4)])
    encode(HERE / "robot_en.mp3", robot_en, fmt="mp3", codec="mp3", rate=16_000, bit_rate=32_000)

    human = [read(p) for p in ZH_HUMAN]
    human_zh = np.concatenate([human[0], silence(0.3), human[1]])
    encode(HERE / "human_zh.mp3", human_zh, fmt="mp3", codec="mp3", rate=16_000, bit_rate=32_000)

    callee = 0.5 * human[0][: 3 * RATE_HZ] / np.max(np.abs(human[0]))
    left = np.concatenate([silence(0.3), a, silence(3.6), b, silence(0.3)])
    right = np.zeros_like(left)
    start = int((0.3 + a.size / RATE_HZ + 0.3) * RATE_HZ)
    right[start : start + callee.size] = callee
    noise = np.random.default_rng(0).normal(0.0, 3e-4, size=(2, left.size)).astype(np.float32)
    encode(
        HERE / "call_stereo.m4a",
        np.stack([left, right]) + noise,
        fmt="mp4",
        codec="aac",
        rate=16_000,
        bit_rate=48_000,
    )


if __name__ == "__main__":
    main()
