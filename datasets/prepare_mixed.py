"""Call-shaped mono mixtures built from the other manifests, for the mono-recording evaluation.

Four structures, each per language (en, zh) and per split, from parts of that split only:

- ``dialer_call`` (robot): a robot greeting, a gap, a second prompt by the same voice, as an
  auto-dialer plays them.
- ``two_party_robot`` (robot): robot prompts interleaved with replies of one human speaker,
  mixed to one channel (a mono recording of a robocall).
- ``human_call`` (human) and ``two_party_human`` (human): the same shapes with a human caller,
  so "several prompts with gaps" or "a second voice" carries no label by itself.

Which clips a call is made of (issue 11: v1 filled a call by looping the caller's clips, so a
person repeated sentences sample for sample and the replayed-audio cue fired on 67 % of the
people's mixtures):

- **No human clip twice in one call.** A human caller's turns are clips of distinct
  utterances (``group_id``: a demo page's clean, noisy and reverberant copies of one recording
  are one utterance) of one speaker, and so are the callee's replies; a speaker with fewer
  utterances than the call needs is not chosen for it.
- **Human clips are spread over the calls, least used first**, one (language, split) at a time:
  every call's caller is chosen before any callee, so callers get the unused clips first. A
  clip is reused in another call only when every speaker with enough clips for that call has
  been used up (the Mandarin dev split, for one, has two people with more than one clip); the
  run logs how many caller and callee clips were reused per (language, split).
- **A robot prompt repeats inside a call by one rule only**: with odds
  :data:`PROMPT_REPLAY_ODDS` in every robot call of every split, the dialer plays its first
  prompt again, sample for sample, as the caller's last turn (``extra["prompt_replay"]`` is
  ``"1"``). Otherwise the caller's prompts are distinct utterances of one voice (speaker and
  engine), those of the first prompt's sales campaign first. Across calls robot prompts are
  reused freely (a dialer plays the same prompt to everyone), least used first.
- Turn counts, the callee's last reply and the replay are drawn before the clips; a draw that
  the split's speech cannot serve is drawn again (at most :data:`MAX_DRAWS` times, counted in
  the log), so the turn shapes are the same in every structure, split and label.

Gaps are digital silence or faint room tone with the same odds in every structure (a model
should not learn "exact zeros = robot" from our data; real dialer silence is a separate cue).
Segment times, roles and part ids are recorded in ``extra["segments"]``.
Audio: ``$ROBOCALL_CACHE_DIR/corpus/mixed_v2`` (:data:`VERSION` is in the folder and in every
seed, so audio of the looping v1 builder is never picked up).

    python datasets/prepare_mixed.py [--calls 150] [--limit N]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections import Counter
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
VERSION = "v2"  # v1 looped the caller's clips (issue 11); bump when the clip rules change
AUDIO_DIR = f"{NAME}_{VERSION}"  # folder under $ROBOCALL_CACHE_DIR/corpus
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
PROMPT_REPLAY_ODDS = 0.2  # a robot call ends on its first prompt again (the only replay)
MAX_DRAWS = 20  # turn-shape draws per call before it is skipped

Turns = list[tuple[str, CorpusRow]]  # [(role, clip), ...] in call order


@dataclasses.dataclass(frozen=True, slots=True)
class Pools:
    robot: dict[tuple[str, str], list[CorpusRow]]  # (language, split) -> robot prompts
    human: dict[tuple[str, str], list[CorpusRow]]  # (language, split) -> human clips


@dataclasses.dataclass(frozen=True, slots=True)
class Shape:
    """The drawn form of one call, before any clip is chosen."""

    caller_turns: int  # caller turns, the replayed prompt included
    replies: int  # callee turns (0 without a callee)
    replay: bool  # the caller's last turn replays its first prompt (robots only)

    @property
    def distinct_prompts(self) -> int:
        return self.caller_turns - 1 if self.replay else self.caller_turns


@dataclasses.dataclass(frozen=True, slots=True)
class CallPlan:
    structure: str
    language: str
    split: str
    index: int
    turns: tuple[tuple[str, CorpusRow], ...]
    replay: bool

    @property
    def row_id(self) -> str:
        return f"{NAME}/{self.structure}/{self.language}/{self.split}/{self.index:04d}"


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


def voices(rows: Sequence[CorpusRow]) -> dict[str, list[CorpusRow]]:
    """Clips by voice: a person is a speaker, a robot a speaker read by one engine."""
    out: dict[str, list[CorpusRow]] = {}
    for r in rows:
        out.setdefault(f"{r.speaker}|{r.engine}", []).append(r)
    return out


def draw_shape(structure: str, rng: np.random.Generator) -> Shape:
    """Turn counts and the replay of one call: the same odds for every label and split."""
    _, robot_caller, two_party = STRUCTURES[structure]
    caller_turns = int(rng.integers(2, 4)) if two_party else 2
    replay = bool(rng.uniform() < PROMPT_REPLAY_ODDS) and robot_caller
    ends_on_caller = bool(rng.uniform() < 0.5)  # half the two-party calls end on the caller
    replies = caller_turns - int(ends_on_caller) if two_party else 0
    return Shape(caller_turns, replies, replay)


def take_clips(
    pool: dict[str, list[CorpusRow]],
    uses: Counter[str],
    n: int,
    rng: np.random.Generator,
    *,
    not_speaker: str | None = None,
    campaign_of_first: bool = False,
) -> list[CorpusRow] | None:
    """``n`` clips of distinct utterances of one voice, the voice whose ``n`` least used such
    clips were used least.

    ``uses`` counts earlier calls' uses of each clip id; ties are broken by ``rng``. A voice of
    speaker ``not_speaker`` (the other side of the call) is never chosen. With
    ``campaign_of_first``, clips of the first clip's campaign come before the rest at equal use.
    Returns None when no voice has ``n`` clips. ``uses`` is not changed.
    """
    best: tuple[int, list[CorpusRow]] | None = None
    for voice in rng.permutation(sorted(pool)):
        clips = pool[str(voice)]
        if len(_one_per_utterance(clips)) < n or clips[0].speaker == not_speaker:
            continue
        order = rng.permutation(len(clips))
        ranked = sorted(range(len(clips)), key=lambda i: (uses[clips[i].id], order[i]))
        chosen = [clips[i] for i in ranked]
        if campaign_of_first:
            head = chosen[0]
            rest = sorted(
                chosen[1:], key=lambda r: (uses[r.id], r.campaign != head.campaign)
            )  # stable: keeps the random order among equals
            chosen = [head, *rest]
        chosen = _one_per_utterance(chosen)[:n]
        cost = sum(uses[r.id] for r in chosen)
        if best is None or cost < best[0]:
            best = (cost, chosen)
    return None if best is None else best[1]


def _one_per_utterance(clips: Sequence[CorpusRow]) -> list[CorpusRow]:
    """The first clip of each utterance: copies of one recording (a demo page's clean, noisy
    and reverberant versions) are the same speech said once."""
    seen: set[str] = set()
    out = []
    for r in clips:
        if r.group_id not in seen:
            seen.add(r.group_id)
            out.append(r)
    return out


def plan_cell(
    language: str, split: str, calls: int, pools: Pools
) -> tuple[list[CallPlan], Counter[str]]:
    """``calls`` calls of every structure from one (language, split)'s clips.

    Calls are planned in the order (index, structure), every caller before any callee, with one
    use count over the cell's clips (the module docstring has the rules). Returns the plans and
    the counts of redrawn shapes (``"redrawn"``) and skipped calls (``"skipped"``).
    """
    robots = voices(pools.robot.get((language, split), []))
    humans = voices(pools.human.get((language, split), []))
    uses: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    callers: list[tuple[str, int, Shape, list[CorpusRow], np.random.Generator]] = []
    for index in range(calls):
        for structure in STRUCTURES:
            rng = seeded_rng(NAME, VERSION, structure, language, split, index, "plan")
            robot_caller = STRUCTURES[structure][1]
            for _ in range(MAX_DRAWS):
                shape = draw_shape(structure, rng)
                prompts = take_clips(
                    robots if robot_caller else humans,
                    uses,
                    shape.distinct_prompts,
                    rng,
                    campaign_of_first=robot_caller,
                )
                if prompts is not None and (
                    not shape.replies
                    or any(
                        len(_one_per_utterance(c)) >= shape.replies
                        and c[0].speaker != prompts[0].speaker
                        for c in humans.values()
                    )
                ):
                    break
                stats["redrawn"] += 1
            else:
                stats["skipped"] += 1
                continue
            uses.update(r.id for r in prompts)
            callers.append((structure, index, shape, prompts, rng))
    plans = []
    for structure, index, shape, prompts, rng in callers:
        replies: list[CorpusRow] = []
        if shape.replies:
            got = take_clips(humans, uses, shape.replies, rng, not_speaker=prompts[0].speaker)
            if got is None:  # unreachable: the caller's draw checked that a callee exists
                raise RuntimeError(f"no callee for {structure} {language} {split} {index}")
            replies = got
            uses.update(r.id for r in replies)
        said = [*prompts, prompts[0]] if shape.replay else prompts
        turns: Turns = []
        for i, prompt in enumerate(said):
            turns.append(("caller", prompt))
            if i < len(replies):
                turns.append(("callee", replies[i]))
        plans.append(CallPlan(structure, language, split, index, tuple(turns), shape.replay))
    return plans, stats


def reuse_counts(calls: Sequence[Sequence[tuple[str, CorpusRow]]]) -> dict[str, int]:
    """How often human clips recur: inside one call, and across calls (by role).

    ``within_call``: calls in which a human utterance (``group_id``: a clip or a copy of it)
    is heard twice; ``caller_reused`` /
    ``callee_reused``: human clips that are a caller's (a callee's) turn in more than one call,
    ``caller_extra_uses`` / ``callee_extra_uses``: their uses beyond the first;
    ``human_in_several``: human clips in more than one call, whatever the role.
    """
    by_role: dict[str, Counter[str]] = {"caller": Counter(), "callee": Counter(), "any": Counter()}
    within = 0
    for turns in calls:
        human = [r.id for _, r in turns if r.label == "human"]
        said = [r.group_id for _, r in turns if r.label == "human"]
        within += len(said) != len(set(said))
        for role in ("caller", "callee"):
            by_role[role].update({r.id for k, r in turns if k == role and r.label == "human"})
        by_role["any"].update(set(human))
    return {
        "within_call": within,
        "caller_reused": sum(n > 1 for n in by_role["caller"].values()),
        "callee_reused": sum(n > 1 for n in by_role["callee"].values()),
        "caller_extra_uses": sum(n - 1 for n in by_role["caller"].values()),
        "callee_extra_uses": sum(n - 1 for n in by_role["callee"].values()),
        "human_in_several": sum(n > 1 for n in by_role["any"].values()),
    }


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


def render_call(
    turns: Sequence[tuple[str, CorpusRow]], rng: np.random.Generator
) -> tuple[np.ndarray, list[dict[str, object]]]:
    """Concatenate turns with gaps into one channel; returns samples and segment records.

    A clip that recurs (the replayed robot prompt) repeats its first excerpt sample for sample.
    """
    room_tone = bool(rng.uniform() < 0.5)
    caller_dbfs = rng.uniform(-30, -20)
    callee_dbfs = caller_dbfs + rng.uniform(-8, 4)  # the callee's side is louder or quieter
    pieces = [_gap(rng, 0.2, 1.2, room_tone)]
    segments: list[dict[str, object]] = []
    cursor = pieces[0].size
    heard: dict[str, np.ndarray] = {}
    for role, row in turns:
        if row.id not in heard:
            clip = read_clip(resolve_path(row)).astype(np.float64)
            clip = _excerpt(clip, rng, MAX_PROMPT_S if role == "caller" else MAX_REPLY_S)
            heard[row.id] = _level(clip, caller_dbfs if role == "caller" else callee_dbfs)
        clip = heard[row.id]
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
    plan: CallPlan, *, rel: str, duration_s: float, segments: list[dict[str, object]]
) -> CorpusRow:
    label, robot_caller, _ = STRUCTURES[plan.structure]
    first = plan.turns[0][1]
    licences = sorted({r.licence for _, r in plan.turns})
    return CorpusRow(
        id=plan.row_id,
        path=rel,
        root="cache",
        label=label,
        kind=plan.structure,
        language=plan.language,
        speaker=first.speaker,  # the caller's voice
        engine=first.engine if robot_caller else "",
        engine_family=first.engine_family if robot_caller else "",
        source=NAME,
        group_id=plan.row_id,
        campaign=first.campaign,
        split=plan.split,
        duration_s=duration_s,
        orig_sr_hz=STORE_RATE_HZ,
        licence="mixture of: " + " | ".join(licences),
        text=" ".join(r.text for role, r in plan.turns if role == "caller" and r.text),
        parts=tuple(dict.fromkeys(r.id for _, r in plan.turns)),
        extra=(
            ("prompt_replay", str(int(plan.replay))),
            ("segments", json.dumps(segments, separators=(",", ":"))),
        ),
    )


def plan_counts(calls: int) -> dict[str, int]:
    """Calls per split for one (structure, language): ``calls`` shared by SPLIT_FRACTIONS."""
    return {s: max(round(calls * f), 1) for s, f in zip(SPLITS, SPLIT_FRACTIONS, strict=True)}


def plan_all(calls: int, pools: Pools) -> list[CallPlan]:
    """Every call of every (language, split), logging the reuse the speech forced."""
    plans: list[CallPlan] = []
    for language in LANGUAGES:
        for split, n in plan_counts(calls).items():
            cell, stats = plan_cell(language, split, n, pools)
            counts = reuse_counts([p.turns for p in cell])
            log.info(
                "%s %s: %d calls, %d shapes redrawn, %d skipped; human clips reused across "
                "calls: %d as caller (%d extra uses), %d as callee (%d extra uses)",
                language,
                split,
                len(cell),
                stats["redrawn"],
                stats["skipped"],
                counts["caller_reused"],
                counts["caller_extra_uses"],
                counts["callee_reused"],
                counts["callee_extra_uses"],
            )
            plans += cell
    return sorted(plans, key=lambda p: (list(STRUCTURES).index(p.structure), p.row_id))


def main(argv: list[str] | None = None) -> int:
    parser = builder_parser(__doc__.splitlines()[0], name=AUDIO_DIR)
    parser.add_argument(
        "--calls", type=int, default=150, help="calls per structure and language (all splits)"
    )
    parser.add_argument(
        "--manifest-dir", type=Path, default=MANIFEST_DIR, help="where the source manifests are"
    )
    parser.set_defaults(manifest=MANIFEST_DIR / f"{NAME}.jsonl")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    rows_in: list[CorpusRow] = []
    for name in SOURCE_MANIFESTS:
        path = args.manifest_dir / f"{name}.jsonl"
        if path.is_file():
            rows_in += read_manifest(path)
        else:
            log.warning("%s is missing: its clips are not used", path)
    out = args.out or corpus_cache_dir() / AUDIO_DIR
    plans = plan_all(args.calls, build_pools(rows_in))
    plans = plans[: args.limit] if args.limit is not None else plans
    previous = {r.id: r for r in read_manifest(args.manifest)} if args.manifest.exists() else {}
    rows = []
    for plan in tqdm(plans, desc=NAME, unit="call", disable=args.no_progress):
        rel = f"{AUDIO_DIR}/{plan.row_id.removeprefix(f'{NAME}/')}.flac"
        path = out / rel.removeprefix(f"{AUDIO_DIR}/")
        old = previous.get(plan.row_id)
        parts = tuple(dict.fromkeys(r.id for _, r in plan.turns))
        if path.exists() and old is not None and old.path == rel and old.parts == parts:
            rows.append(old)  # idempotent
            continue
        samples, segments = render_call(
            plan.turns, seeded_rng(NAME, VERSION, plan.row_id, "render")
        )
        duration_s = write_clip(path, samples, sample_rate_hz=STORE_RATE_HZ)
        rows.append(make_row(plan, rel=rel, duration_s=duration_s, segments=segments))
    write_manifest(rows, args.manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
