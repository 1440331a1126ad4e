"""Telephone signalling tones (``pipeline/tones.py``): found, never taken for a voice, and what
they did to a verdict before the speech gate left them out.

    PYTHONPATH=. nice -n 5 .venv/bin/python bench/signalling_tones.py \
        [--parts corpus,tones,detector,campaigns] [--people 30] [--robots 16]

``corpus``: every clip of the corpus manifests *except* the 40 per (source, label) on which the
rule's thresholds were chosen (the first 40 in the order of ``hash_unit(id, salt=CHOICE_SALT)``),
as decoded and through ``call_channel``, and every channel of the simulated calls: the tone
frames inside the speech the energy gate heard without the rule, how many are 1,400 Hz IVR beeps,
and how often ``voiced_intervals`` moved. ``tones``: ITU-T E.180 cadences at three levels, clean,
on the call path and through our telephone channel's codecs with noise (a seed the choice did not
use): the share of each burst's inner frames found. ``detector``: test-split people and robots
of the shared data and English TTS with two ringback cycles in front (North American and
Chinese), through the whole shipped detector with and without the rule (``pipeline.vad``'s
``tone_frames`` replaced by "no tone" for the second): how many are called robot.
``campaigns``: the same test people, every pair with the same ringing in front of both, through
the carrier index's landmarks (``pipeline.fingerprint``) with and without the rule: how many
pairs are judged one replayed prompt. Nothing is fitted here.
"""

from __future__ import annotations

import argparse
import collections
import io
import itertools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import numpy as np
import soundfile as sf
from scipy import ndimage

from models.training.corpus import (
    MANIFEST_DIR,
    CorpusRow,
    hash_unit,
    read_clip,
    read_manifest,
    read_manifests,
    resolve_path,
)
from models.training.metrics import rate_ci
from pipeline.fingerprint import landmarks, match_landmarks
from pipeline.telephone import ChannelConfig, call_channel, telephone_channel
from pipeline.tones import FRAME_S, tone_frames
from pipeline.types import ANALYSIS_RATE_HZ
from pipeline.vad import frame_rms_dbfs, voiced_intervals

SR = ANALYSIS_RATE_HZ
HOP = int(FRAME_S * SR)
CHOICE_SALT = "tones-scan"  # the rule was chosen on the first CHOICE_PER_GROUP of each group
CHOICE_PER_GROUP = 40
MANIFESTS = (
    "shared",
    "tts_en",
    "resynth",
    "vocoded",
    "mixed",
    "kokoro/kokoro_v1",
    "kokoro/kokoro_train_v1",
    "ttskit/ttskit_train_v1",
    "pypi_speech/pypi_speech",
)
IVR_BEEP_HZ = (1385.0, 1415.0)
# ITU-T E.180 tones: frequencies, cadence (on, off, ...) in seconds
TONES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "ringback, North America (440 + 480 Hz)": ((440.0, 480.0), (2.0, 4.0)),
    "ringback, China (450 Hz)": ((450.0,), (1.0, 4.0)),
    "ringback, Europe (425 Hz)": ((425.0,), (1.0, 4.0)),
    "ringback, UK (400 + 450 Hz)": ((400.0, 450.0), (0.4, 0.2, 0.4, 2.0)),
    "busy, North America (480 + 620 Hz)": ((480.0, 620.0), (0.5, 0.5)),
    "busy, China (450 Hz)": ((450.0,), (0.35, 0.35)),
    "busy, Europe (425 Hz)": ((425.0,), (0.5, 0.5)),
    "recorder beep (1400 Hz, 0.2 s)": ((1400.0,), (0.2, 2.0)),
    "call waiting (440 Hz, 0.3 s)": ((440.0,), (0.3, 3.0)),
    "special information tone (913.8 Hz)": ((913.8,), (0.274, 1.0)),
    "dial tone, North America (350 + 440 Hz; 4:5, not found)": ((350.0, 440.0), (10.0, 0.01)),
    "DTMF key '5' (0.1 s; too short, not found)": ((770.0, 1336.0), (0.1, 0.1)),
}
RINGS = ("ringback, North America (440 + 480 Hz)", "ringback, China (450 Hz)")


def cadence(
    freqs_hz: tuple[float, ...], pattern_s: tuple[float, ...], total_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """A tone cadence of unit RMS while on, and where it is on (per sample)."""
    t = np.arange(int(total_s * SR)) / SR
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs_hz) * np.sqrt(2.0 / len(freqs_hz))
    period = np.cumsum(pattern_s)
    on = np.searchsorted(period, t % period[-1], side="right") % 2 == 0
    return (x * on).astype(np.float32), on


@contextmanager
def tone_rule(active: bool) -> Iterator[None]:
    """The speech gate and the landmarks with the tone rule (True) or as before it (False)."""
    if active:
        yield
        return
    none = lambda s: np.zeros(np.asarray(s).size // HOP, dtype=bool)  # noqa: E731
    with (
        mock.patch("pipeline.vad.tone_frames", none),
        mock.patch("pipeline.fingerprint.tone_frames", none),
    ):
        yield


def speech_mask(intervals: list[tuple[float, float]], n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for a, b in intervals:
        mask[int(round(a / FRAME_S)) : int(round(b / FRAME_S))] = True
    return mask


def held_out_rows() -> list[CorpusRow]:
    groups: dict[tuple[str, str], list[CorpusRow]] = collections.defaultdict(list)
    for row in read_manifests(list(MANIFESTS)):
        groups[(row.source, row.label)].append(row)
    out = []
    for rows in groups.values():
        rows.sort(key=lambda r: hash_unit(r.id, salt=CHOICE_SALT))
        out += rows[CHOICE_PER_GROUP:]
    return out


def is_ivr_beep(x: np.ndarray, frames: np.ndarray) -> bool:
    """The flagged frames' strongest frequency is an IVR's 1,400 Hz beep."""
    flagged = np.asarray(x[: frames.size * HOP]).reshape(frames.size, HOP)[frames].ravel()
    spectrum = np.abs(np.fft.rfft(flagged * np.hanning(flagged.size)))
    peak_hz = float(np.fft.rfftfreq(flagged.size, 1.0 / SR)[np.argmax(spectrum)])
    return IVR_BEEP_HZ[0] <= peak_hz <= IVR_BEEP_HZ[1]


def corpus_part() -> None:
    counts: collections.Counter[str] = collections.Counter()
    for kind, rows in (
        ("clips", held_out_rows()),
        ("call channels", read_manifest(MANIFEST_DIR / "calls" / "calls.jsonl")),
    ):
        for row in rows:
            path = resolve_path(row)
            if not path.exists():
                counts[f"{kind} missing"] += 1
                continue
            if kind == "clips":
                y = read_clip(path)
                channels = [y, call_channel(y)]
            else:
                x, _ = sf.read(path, dtype="float32", always_2d=True)
                channels = [x[:, c] for c in range(x.shape[1])]
            for z in channels:
                with tone_rule(False):
                    before = voiced_intervals(z)
                found = tone_frames(z)
                inside = found & speech_mask(before, found.size)
                counts[f"{kind}"] += 1
                counts[f"{kind} speech frames"] += int(speech_mask(before, found.size).sum())
                counts[f"{kind} tone frames in speech"] += int(inside.sum())
                if inside.any():
                    counts[f"{kind} with a tone"] += 1
                    if is_ivr_beep(z, inside):
                        counts[f"{kind} with a 1,400 Hz IVR beep"] += 1
                        counts[f"{kind} IVR beep frames"] += int(inside.sum())
                if voiced_intervals(z) != before:
                    counts[f"{kind} whose speech moved"] += 1
    print("\n## Corpus: tone frames inside speech (rule chosen on other clips)\n")
    print("| what | count |\n|---|---|")
    for key, value in counts.items():
        print(f"| {key} | {value:,} |")


def tones_part() -> None:
    rng = np.random.default_rng(11)
    print("\n## Generated tones: share of each burst's inner frames found\n")
    print(
        "| tone | level dBFS | clean | call path | AMR-NB + noise | GSM + noise | A-law + noise |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, (freqs, pattern) in TONES.items():
        x, on = cadence(freqs, pattern, 12.0)
        n = on.size // HOP
        inner = ndimage.binary_erosion(on[: n * HOP].reshape(n, HOP).all(axis=1), iterations=2)
        for level_dbfs in (-10.0, -20.0, -30.0):
            y = x * np.float32(10 ** (level_dbfs / 20))
            paths = [y, call_channel(y)]
            for codec in ("amr_nb", "gsm", "alaw"):
                config = ChannelConfig(codecs=(codec,), trim=False, snr_db_range=(15.0, 25.0))
                paths.append(telephone_channel(y, sample_rate_hz=SR, rng=rng, config=config))
            cells = [f"{tone_frames(p)[inner].mean() * 100:.0f} %" for p in paths]
            print(f"| {name} | {level_dbfs:g} | " + " | ".join(cells) + " |")


def test_rows(label: str, limit: int) -> list[CorpusRow]:
    """Test-split clips of one label, both languages, at most 3 per (source, language)."""
    rows = [
        r
        for r in read_manifests(["shared", "tts_en"])
        if r.split == "test" and r.label == label and r.language in ("en", "zh")
    ]
    rows.sort(key=lambda r: hash_unit(r.id, salt="tones-e2e"))
    out: list[CorpusRow] = []
    per: collections.Counter[tuple[str, str]] = collections.Counter()
    for row in rows:
        if per[(row.source, row.language)] < 3 and len(out) < limit:
            per[(row.source, row.language)] += 1
            out.append(row)
    return out


def ringing_in_front(y: np.ndarray, ring: str) -> np.ndarray:
    """Two cycles of ``ring`` 6 dB under the clip's loud frames, then the clip."""
    freqs, pattern = TONES[ring]
    tone, _ = cadence(freqs, pattern, 2 * sum(pattern))
    level_dbfs = float(np.percentile(frame_rms_dbfs(y), 95)) - 6.0
    return np.concatenate([tone * np.float32(10 ** (level_dbfs / 20)), y]).astype(np.float32)


def detector_part(people: int, robots: int) -> None:
    from pipeline.config import load_config
    from pipeline.errors import RobocallError
    from service.detector import load_detector

    detector = load_detector(load_config())
    results: dict[tuple[str, str, bool], list[float | None]] = collections.defaultdict(list)
    groups: dict[str, list[str]] = collections.defaultdict(list)  # speaker / engine per clip
    for row in test_rows("human", people) + test_rows("robot", robots):
        groups[row.label].append(
            row.speaker if row.label == "human" else row.engine_family or row.source
        )
        y = read_clip(resolve_path(row))
        for variant in ("as recorded", *RINGS):
            z = y if variant == "as recorded" else ringing_in_front(y, variant)
            buffer = io.BytesIO()
            sf.write(buffer, z, SR, format="WAV", subtype="PCM_16")
            for active in (False, True):
                with tone_rule(active):
                    try:
                        p: float | None = detector.detect(
                            buffer.getvalue(), name=f"{row.id}.wav"
                        ).robot_probability
                    except RobocallError:
                        p = None  # refused (too short, no speech): no verdict either way
                results[(row.label, variant, active)].append(p)
        print(".", end="", file=sys.stderr, flush=True)
    print("\n## Whole detector: ringing in front of a test clip\n")
    print(
        "| clips | what came first | judged | called robot, without the rule [95 % CI] | "
        "with it | mean robot probability without / with | refused without / with |"
    )
    print("|---|---|---|---|---|---|---|")
    for label in ("human", "robot"):
        for variant in ("as recorded", *RINGS):
            off, on = results[(label, variant, False)], results[(label, variant, True)]
            kept = [i for i, (a, b) in enumerate(zip(off, on, strict=True)) if None not in (a, b)]
            who_group = [groups[label][i] for i in kept]
            cells, means = [], []
            for side in (off, on):
                scores = np.array([side[i] for i in kept], dtype=float)
                called = scores >= 0.5
                cells.append(f"{called.mean() * 100:.1f} % {fmt(rate_ci(called, who_group))}")
                means.append(f"{scores.mean():.3f}")
            refused = f"{off.count(None)} / {on.count(None)}"
            who = "people" if label == "human" else "robots"
            print(
                f"| {who} | {variant} | {len(kept)} | {cells[0]} | {cells[1]} | "
                f"{' / '.join(means)} | {refused} |"
            )


def fmt(interval: tuple[float, float]) -> str:
    low, high = interval
    return f"[{low * 100:.1f}, {high * 100:.1f}]"


def campaigns_part(people: int) -> None:
    """Pairs of different test people, the same ringing in front of both: one "prompt"?"""
    clips = [read_clip(resolve_path(row)) for row in test_rows("human", people)]
    print("\n## Carrier index: pairs of different people with the same ringing in front\n")
    print("| what came first | pairs | judged the same prompt without the rule | with it |")
    print("|---|---|---|---|")
    for variant in ("as recorded", *RINGS):
        calls = [y if variant == "as recorded" else ringing_in_front(y, variant) for y in clips]
        same = []
        for active in (False, True):
            with tone_rule(active):
                marks = [landmarks(y, sample_rate_hz=SR) for y in calls]
            pairs = list(itertools.combinations(marks, 2))
            same.append(sum(match_landmarks(a, b).is_same_prompt for a, b in pairs))
        print(f"| {variant} | {len(pairs)} | {same[0]} | {same[1]} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="corpus,tones,detector,campaigns")
    parser.add_argument("--people", type=int, default=30, help="test people (detector part)")
    parser.add_argument("--robots", type=int, default=16, help="test robots (detector part)")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    if "tones" in parts:
        tones_part()
    if "corpus" in parts:
        corpus_part()
    if "detector" in parts:
        detector_part(args.people, args.robots)
    if "campaigns" in parts:
        campaigns_part(args.people)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
