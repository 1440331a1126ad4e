"""Call-shaped mono mixtures built from the other manifests, for the mono-recording evaluation.

Four structures, each per language (en, zh) and per split, from parts of that split only:

- ``dialer_call`` (robot): a robot greeting, a gap, a second prompt by the same voice, as an
  auto-dialer plays them.
- ``two_party_robot`` (robot): robot prompts interleaved with replies of one human speaker,
  mixed to one channel (a mono recording of a robocall).
- ``human_call`` (human) and ``two_party_human`` (human): the same shapes with a human caller,
  so "several prompts with gaps" or "a second voice" carries no label by itself.

Gaps are digital silence or faint room tone with the same odds in every structure (a model
should not learn "exact zeros = robot" from our data; real dialer silence is a separate cue).
Segment times, roles and part ids are recorded in ``extra["segments"]``.
Audio: ``$ROBOCALL_CACHE_DIR/corpus/mixed``.

    python datasets/prepare_mixed.py [--calls 150] [--limit N]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.training.corpus import (
    MANIFEST_DIR,
    SPLIT_FRACTIONS,
    SPLITS,
    STORE_RATE_HZ,
    CorpusRow,
    builder_parser,
    corpus_cache_dir,
    read_clip,
    read_manifest,
    resolve_path,
    seeded_rng,
    write_clip,
    write_manifest,
)

log = logging.getLogger("prepare_mixed")
NAME = "mixed"
STRUCTURES = {  # name -> (label, caller is robot, has a human callee)
    "dialer_call": ("robot", True, False),
    "two_party_robot": ("robot", True, True),
    "human_call": ("human", False, False),
    "two_party_human": ("human", False, True),
}
LANGUAGES = ("en", "zh")
MAX_REPLY_S = 5.0  # callee replies are cut to at most this
MAX_PROMPT_S = 12.0  # so is each caller turn
SOURCE_MANIFESTS = ("shared", "tts_en")  # WORLD/Griffin-Lim copies are not dialer prompts


@dataclasses.dataclass(frozen=True, slots=True)
class Pools:
    robot: dict[tuple[str, str], list[CorpusRow]]  # (language, split) -> robot prompts
    human: dict[tuple[str, str], list[CorpusRow]]  # (language, split) -> human clips


def build_pools(rows: Sequence[CorpusRow]) -> Pools:
    """Robot prompts (TTS and vocoded clips) and human clips, keyed by (language, split)."""
    robot: dict[tuple[str, str], list[CorpusRow]] = {}
    human: dict[tuple[str, str], list[CorpusRow]] = {}
    for row in sorted(rows, key=lambda r: r.id):
        if row.language not in LANGUAGES or row.duration_s < 0.8:
            continue
        if row.label == "robot" and row.kind != "resynthesis":
            robot.setdefault((row.language, row.split), []).append(row)
        elif row.label == "human":
            human.setdefault((row.language, row.split), []).append(row)
    return Pools(robot, human)


def _excerpt(x: np.ndarray, rng: np.random.Generator, max_s: float) -> np.ndarray:
    """At most ``max_s`` seconds from a random start, with 20 ms fades."""
    n = int(max_s * STORE_RATE_HZ)
    if x.size > n:
        start = int(rng.integers(0, x.size - n))
        x = x[start : start + n].copy()
    fade = min(int(0.02 * STORE_RATE_HZ), x.size // 2)
    ramp = np.linspace(0.0, 1.0, fade)
    x[:fade] *= ramp
    x[x.size - fade :] *= ramp[::-1]
    return x


def _level(x: np.ndarray, dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    return x * (10 ** (dbfs / 20) / rms) if rms > 0 else x


def _gap(rng: np.random.Generator, low_s: float, high_s: float, room_tone: bool) -> np.ndarray:
    n = int(rng.uniform(low_s, high_s) * STORE_RATE_HZ)
    if not room_tone:
        return np.zeros(n)
    return rng.standard_normal(n) * 10 ** (rng.uniform(-65, -50) / 20)


def plan_call(
    structure: str, language: str, split: str, index: int, pools: Pools
) -> tuple[CorpusRow, list[tuple[str, CorpusRow]]] | None:
    """Caller's first part and the turn list ``[(role, row), ...]``; None if a pool is empty."""
    _, robot_caller, two_party = STRUCTURES[structure]
    rng = seeded_rng(NAME, structure, language, split, index, "plan")
    callers = (pools.robot if robot_caller else pools.human).get((language, split), [])
    humans = pools.human.get((language, split), [])
    if not callers or (two_party and not humans):
        return None
    first = callers[int(rng.integers(len(callers)))]
    same_voice = [
        r
        for r in callers
        if r.speaker == first.speaker and r.engine == first.engine and r.id != first.id
    ]
    same_campaign = [r for r in same_voice if first.campaign and r.campaign == first.campaign]
    follow_ups = same_campaign or same_voice or [first]  # dialers repeat prompts, too
    n_caller_turns = 2 if not two_party else int(rng.integers(2, 4))
    caller_turns = [first] + [
        follow_ups[int(rng.integers(len(follow_ups)))] for _ in range(n_caller_turns - 1)
    ]
    if not two_party:
        return first, [("caller", r) for r in caller_turns]
    others = [r for r in humans if r.speaker != first.speaker]
    if not others:
        return None
    callee = others[int(rng.integers(len(others)))].speaker
    replies = [r for r in others if r.speaker == callee]
    turns: list[tuple[str, CorpusRow]] = []
    for turn in caller_turns:
        turns.append(("caller", turn))
        turns.append(("callee", replies[int(rng.integers(len(replies)))]))
    if rng.uniform() < 0.5:
        turns.pop()  # half the calls end on the caller
    return first, turns


def render_call(
    turns: list[tuple[str, CorpusRow]], rng: np.random.Generator
) -> tuple[np.ndarray, list[dict[str, object]]]:
    """Concatenate turns with gaps into one channel; returns samples and segment records."""
    room_tone = bool(rng.uniform() < 0.5)
    caller_dbfs = rng.uniform(-30, -20)
    callee_dbfs = caller_dbfs + rng.uniform(-8, 4)  # the callee's side is louder or quieter
    pieces = [_gap(rng, 0.2, 1.2, room_tone)]
    segments: list[dict[str, object]] = []
    cursor = pieces[0].size
    for role, row in turns:
        clip = read_clip(resolve_path(row)).astype(np.float64)
        clip = _excerpt(clip, rng, MAX_PROMPT_S if role == "caller" else MAX_REPLY_S)
        clip = _level(clip, caller_dbfs if role == "caller" else callee_dbfs)
        segments.append(
            {
                "role": role,
                "id": row.id,
                "start_s": round(cursor / STORE_RATE_HZ, 3),
                "end_s": round((cursor + clip.size) / STORE_RATE_HZ, 3),
            }
        )
        gap = _gap(rng, 0.3, 2.0, room_tone)
        pieces += [clip, gap]
        cursor += clip.size + gap.size
    return np.concatenate(pieces), segments


def make_row(
    structure: str,
    language: str,
    split: str,
    index: int,
    first: CorpusRow,
    turns: list[tuple[str, CorpusRow]],
    *,
    rel: str,
    duration_s: float,
    segments: list[dict[str, object]],
) -> CorpusRow:
    label, robot_caller, _ = STRUCTURES[structure]
    row_id = f"{NAME}/{structure}/{language}/{split}/{index:04d}"
    parts = tuple(dict.fromkeys(r.id for _, r in turns))
    licences = sorted({r.licence for _, r in turns})
    return CorpusRow(
        id=row_id,
        path=rel,
        root="cache",
        label=label,
        kind=structure,
        language=language,
        speaker=first.speaker,  # the caller's voice
        engine=first.engine if robot_caller else "",
        engine_family=first.engine_family if robot_caller else "",
        source=NAME,
        group_id=row_id,
        campaign=first.campaign,
        split=split,
        duration_s=duration_s,
        orig_sr_hz=STORE_RATE_HZ,
        licence="mixture of: " + " | ".join(licences),
        text=" ".join(r.text for role, r in turns if role == "caller" and r.text),
        parts=parts,
        extra=(("segments", json.dumps(segments, separators=(",", ":"))),),
    )


def plan_counts(calls: int) -> dict[str, int]:
    """Calls per split for one (structure, language): ``calls`` shared by SPLIT_FRACTIONS."""
    return {s: max(round(calls * f), 1) for s, f in zip(SPLITS, SPLIT_FRACTIONS, strict=True)}


def main(argv: list[str] | None = None) -> int:
    parser = builder_parser(__doc__.splitlines()[0], name=NAME)
    parser.add_argument(
        "--calls", type=int, default=150, help="calls per structure and language (all splits)"
    )
    parser.add_argument(
        "--manifest-dir", type=Path, default=MANIFEST_DIR, help="where the source manifests are"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    rows_in: list[CorpusRow] = []
    for name in SOURCE_MANIFESTS:
        path = args.manifest_dir / f"{name}.jsonl"
        if path.is_file():
            rows_in += read_manifest(path)
        else:
            log.warning("%s is missing: its clips are not used", path)
    pools = build_pools(rows_in)
    out = args.out or corpus_cache_dir() / NAME
    jobs = [
        (structure, language, split, i)
        for structure in STRUCTURES
        for language in LANGUAGES
        for split, n in plan_counts(args.calls).items()
        for i in range(n)
    ]
    jobs = jobs[: args.limit] if args.limit is not None else jobs
    previous = {r.id: r for r in read_manifest(args.manifest)} if args.manifest.exists() else {}
    rows, skipped = [], 0
    for structure, language, split, i in tqdm(
        jobs, desc=NAME, unit="call", disable=args.no_progress
    ):
        plan = plan_call(structure, language, split, i, pools)
        if plan is None:
            skipped += 1
            continue
        first, turns = plan
        rel = f"{NAME}/{structure}/{language}/{split}/{i:04d}.flac"
        path = out / rel.removeprefix(f"{NAME}/")
        row_id = rel.removesuffix(".flac")
        parts = tuple(dict.fromkeys(r.id for _, r in turns))
        if path.exists() and row_id in previous and previous[row_id].parts == parts:  # idempotent
            rows.append(previous[row_id])
            continue
        samples, segments = render_call(turns, seeded_rng(NAME, row_id, "render"))
        duration_s = write_clip(path, samples, sample_rate_hz=STORE_RATE_HZ)
        rows.append(
            make_row(
                structure,
                language,
                split,
                i,
                first,
                turns,
                rel=rel,
                duration_s=duration_s,
                segments=segments,
            )
        )
    if skipped:
        log.warning("%d calls skipped: no parts of that language in that split", skipped)
    write_manifest(rows, args.manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
