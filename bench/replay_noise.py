"""Does line noise hide a replayed prompt from ``replayed_speech_s``, and would subtracting the
noise floor bring it back?

For each human speaker of the shared clips with two clips of at least 2 s (one pair per
speaker), a caller leg is built as the simulator builds a recorded-prompt robot's: clip A, a
pause, clip B (the same speaker, another sentence), a pause, clip A again, bit for bit. The leg
goes through ``pipeline.telephone.apply_channel`` at each codec and SNR below, with the leg's
own noise. On the leg's log-mel frames (``pipeline.acoustic``'s analysis) each chunk of A the
replay search takes (up to ``REPEAT_MAX_S``, one every ``REPEAT_STEP_S``) is correlated, as
``replay_search`` checks an offset exactly, with its replay (at its known offset, +-3 frames) and
with every offset inside B; the best chunk is kept for each. Scorings:
the raw log-mel, and for each ``--margins`` value the levels above each band's noise floor
plus that many dB (``pipeline.acoustic.above_floor_db``, as ``replay_search`` scores). Speakers
of the train and dev splits are where a margin is chosen (rule: the margin that lifts the most
train+dev replays to ``REPEAT_MIN_CORR`` while no train+dev other sentence reaches 0.90); test
speakers are reported apart.

    python bench/replay_noise.py [--margins 0,3,6,9,12] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from models.training.corpus import CorpusRow, read_clip, read_manifests, resolve_path
from pipeline import acoustic as A
from pipeline.telephone import ChannelConfig, ChannelParams, apply_channel

RATE = 16_000
PAUSE_S = 1.0
LEAD_S = 0.5
CODECS = ("mulaw", "gsm", "amr_nb")
SNRS_DB = (15.0, 20.0, 25.0, 30.0, 40.0)
SHIFT = 3  # frames searched either side of the replay's known offset


def speaker_pairs() -> list[tuple[str, CorpusRow, CorpusRow]]:
    """(split group, A, B): per speaker the first two clips (by id) of at least 2 s."""
    by_speaker: dict[str, list[CorpusRow]] = defaultdict(list)
    for row in sorted(read_manifests(["shared"]), key=lambda r: r.id):
        if row.label == "human" and row.duration_s >= 2.0:
            by_speaker[row.speaker].append(row)
    return [
        ("test" if clips[0].split == "test" else "train+dev", clips[0], clips[1])
        for _, clips in sorted(by_speaker.items())
        if len(clips) >= 2 and clips[0].split == clips[1].split
    ]


def window_corr(mel: np.ndarray, q0: int, n: int, offsets: range) -> float:
    """Best exact correlation of ``mel[q0:q0+n]`` with the windows starting at ``offsets``."""
    z = A.zscore(mel[q0 : q0 + n])
    return max(float(np.mean(z * A.zscore(mel[o : o + n]))) for o in offsets)


def leg_scores(
    a: np.ndarray, b: np.ndarray, params: ChannelParams, margins_db: tuple[float, ...]
) -> dict[str, float]:
    """Replay and other-sentence correlations of one leg, every scoring."""
    pause = np.zeros(int(PAUSE_S * RATE), np.float32)
    lead = np.zeros(int(LEAD_S * RATE), np.float32)
    leg = np.concatenate([lead, a, pause, b, pause, a, lead])
    out = apply_channel(leg, sample_rate_hz=RATE, params=params, config=ChannelConfig(trim=False))
    mel = A.log_mel_db(out).astype(np.float64)
    frames = A.RATE_HZ / A.HOP  # analysis frames per second
    n = int(min(A.REPEAT_MAX_S, a.size / RATE) * frames)
    q0 = int(LEAD_S * frames)
    a_end = q0 + int(a.size / RATE * frames)
    n_min, n_step = int(A.REPEAT_MIN_S * frames), int(A.REPEAT_STEP_S * frames)
    chunks = [(q, min(n, a_end - q)) for q in range(q0, a_end - n_min + 1, n_step)]
    b0 = int((LEAD_S + a.size / RATE + PAUSE_S) * frames)
    b1 = b0 + int(b.size / RATE * frames)
    again = int((LEAD_S + a.size / RATE + PAUSE_S + b.size / RATE + PAUSE_S) * frames)
    result = {}
    scorings = {"raw": mel} | {f"floor{m:g}": A.above_floor_db(mel, m) for m in margins_db}
    for name, m in scorings.items():
        result[f"{name}_replay"] = max(
            window_corr(m, q, k, range(again + q - q0 - SHIFT, again + q - q0 + SHIFT + 1))
            for q, k in chunks
        )
        result[f"{name}_other"] = max(
            window_corr(m, q, k, range(b0, max(b0 + 1, b1 - k + 1))) for q, k in chunks
        )
    return result


def measure(margins_db: tuple[float, ...]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for group, ra, rb in speaker_pairs():
        a, b = read_clip(resolve_path(ra)), read_clip(resolve_path(rb))
        for codec in CODECS:
            for snr in SNRS_DB:
                seed = zlib.crc32(f"{ra.id}|{codec}|{snr:g}".encode())
                params = ChannelParams(codec, 12_200, "pink", snr, 0.0, seed)
                rows.append({"group": group, "speaker": ra.speaker, "codec": codec, "snr_db": snr,
                             **leg_scores(a, b, params, margins_db)})  # fmt: skip
    return {"margins_db": list(margins_db), "rows": rows}


def scoring_names(result: dict[str, Any]) -> list[str]:
    return ["raw", *(f"floor{m:g}" for m in result["margins_db"])]


def summary(result: dict[str, Any]) -> str:
    """Per scoring and group of speakers: replays passing ``REPEAT_MIN_CORR``, their 10th
    percentile by SNR, and the highest other-sentence correlation."""
    snrs = sorted({r["snr_db"] for r in result["rows"]})
    head = " | ".join(f"replay p10 {s:g} dB" for s in snrs)
    lines = [
        f"replays passing {A.REPEAT_MIN_CORR} (all SNRs and codecs), 10th percentile of the "
        "replays' correlation by SNR, highest correlation with another sentence",
        "",
        f"| speakers | scoring | n | replays passing | {head} | other, highest |",
        "|---|---|---|---|" + "---|" * len(snrs) + "---|",
    ]
    for group in ("train+dev", "test"):
        rows = [r for r in result["rows"] if r["group"] == group]
        for name in scoring_names(result):
            replay = np.array([r[f"{name}_replay"] for r in rows])
            p10 = " | ".join(
                f"{np.percentile([r[f'{name}_replay'] for r in rows if r['snr_db'] == s], 10):.3f}"
                for s in snrs
            )
            lines.append(
                f"| {group} | {name} | {len(rows)} "
                f"| {np.mean(replay >= A.REPEAT_MIN_CORR):.1%} | {p10} "
                f"| {max(r[f'{name}_other'] for r in rows):.3f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--margins", default="0,3,6,9,12", help="dB above the noise floor, comma-separated"
    )
    parser.add_argument("--json", type=Path, help="write every leg's scores here too")
    args = parser.parse_args()
    result = measure(tuple(float(m) for m in args.margins.split(",")))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(summary(result))  # noqa: T201 - a measurement script's result


if __name__ == "__main__":
    main()
