"""Simulated two-party calls (issue 13), stereo and mono, with per-turn ground truth.

Three caller kinds, each in Mandarin and English, built from the shared clips and ``tts_en``:

- ``tts_robot``: a dialogue robot whose prompts are TTS clips of one voice;
- ``recorded_robot``: a dialogue robot whose prompts were cut once from one human speaker's
  clips (真人录音) and are replayed verbatim in every call of that campaign;
- ``human_agent``: a person. No real sales calls exist here, so agents are *human read speech*
  (excerpts of one speaker's clips, none used twice, so an agent's call ends when the clips it
  was given run out) placed with human timing; see docs/evaluation_calls.md.

A person never says the same audio twice: every stretch of an agent's or a callee's speech is
given to one call only (:func:`allocate_calls`; an agent plays several calls with different
clips, or different sentences of one long clip), so a cross-call prompt index can only find
what a robot replays. Only a robot's prompt audio is
bit-identical across the calls of its campaign.

Robots follow a script tree (greeting, pitches, objection handler, fallback, goodbye): the next
prompt depends on the callee's turn type only (an unexpected question gets the fallback, which
is off-topic), the response latency after the callee stops is a per-campaign constant plus a
few tens of ms, there are no backchannels, and a barge-in is either ignored (the prompt plays on)
or the prompt is cut and restarted from the beginning. Agents answer after a variable latency
(sometimes before the callee has finished), backchannel during long callee turns, yield within
a second to a barge-in and go on with the rest of their sentence, and sometimes repair (a false
start, then the sentence again). Callees say hello (half the calls), answer, object, ask,
interrupt and hang up.

Every human excerpt is played at a per-use speed factor (0.93-1.07), as a person never says a
sentence twice alike; only robot prompts are bit-identical between uses. Each party's channel
gets faint room tone and then goes through ``pipeline.telephone.apply_channel`` (one codec per
call, noise per side, untrimmed); stereo puts the caller on a random channel, mono sums both
sides at a random level difference, as call-recorder apps save them.

Splits follow the corpus: a call of split X is built only from clips that are split X in
``shared.jsonl`` / ``tts_en.jsonl`` (human speakers, TTS voices, the callee's clips), so no model
trained on the corpus's train split heard a dev or test call's voices (``datasets/splits.py
--check`` checks the calls against every other manifest). Within a language and split each
human speaker gets one role (prompt set, agent or callee, :func:`assign_roles`) and may play in
several calls; the callee is never the speaker a TTS caller imitates. Roles are given within each
human source (a corpus), and recorded-prompt robots and agents of a language and split are drawn
from the same sources, call for call (the robot's call ``i`` is from the source of the agent's
call ``i``), so that no recording source tells the two apart; a source that gives no prompt set
gives callees only, and a source with a prompt speaker but no agent speaker lends the prompt
speaker's other clips to agent calls. Few Mandarin speakers and TTS voices are dev or test with
enough speech, so some (language, split, caller kind) cells get fewer calls than asked or none:
``main`` logs them and docs/evaluation_calls.md lists them.

About 900 lines: the dialogue model, the clip allocation and the rendering share the records of
one call (pieces, voices, events); apart, each part would only pass them on.

Audio: ``$ROBOCALL_CACHE_DIR/corpus/calls_v3/{stereo,mono}/...``; manifest
``datasets/manifests/calls/calls.jsonl`` (a subfolder: see ``CALLS_MANIFEST``), one row per
file; ``extra`` holds ``layout``, ``caller_kind``, ``caller_channel`` and ``segments`` (JSON
list: role, kind, start_s, end_s, prompt_id, part, text).

    python datasets/prepare_calls.py [--calls-per-split train=10,dev=20,test=20] [--limit N]

``--notice`` builds the agent calls again, each opening with a recorded notice that every call
of its (language, split) plays, as a call centre's dialer plays "this call may be recorded"
before the agent speaks (:func:`notice_pieces`, :func:`with_notice`): the one thing a live
agent's calls share bit for bit, for measuring what a carrier's prompt index makes of it
(``bench/notice_index.py``). Audio ``calls_v3_notice/``, manifest ``calls/notice.jsonl``; the
calls keep their call ids and groups, so each pairs with the call it copies.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal
from tqdm import tqdm

from models.training.corpus import (
    MANIFEST_DIR,
    SPLITS,
    STORE_RATE_HZ,
    CorpusRow,
    builder_parser,
    corpus_cache_dir,
    hash_unit,
    read_clip,
    read_manifest,
    resolve_path,
    seeded_rng,
    write_manifest,
)
from pipeline.telephone import ChannelConfig, apply_channel, draw_channel_params, wideband_channel
from pipeline.vad import voiced_intervals

log = logging.getLogger("prepare_calls")
NAME = "calls"
SALT = "calls-v3"  # change it and every role changes
# under the corpus cache; v2 reused agent and callee clips across calls, v1 had its own splits
AUDIO_DIR = "calls_v3"
NOTICE = "notice"  # the variant of the agent calls that open with a call centre's recorded notice
WIDEBAND = "wideband"  # the variant of the calls on a wideband line (50-7000 Hz, no codec)
LANGUAGES = ("en", "zh")
CALLER_KINDS = {"tts_robot": "robot", "recorded_robot": "robot", "human_agent": "human"}
LAYOUTS = ("stereo", "mono")
ROLES = ("prompt", "agent", "callee")  # of a human speaker in one split; the order breaks ties
# how the speakers who fit several roles are shared out: a campaign replays one prompt set in
# any number of calls, while every agent and callee call takes clips of its own
ROLE_SHARES = {"prompt": 1.0, "agent": 1.0, "callee": 4.0}
# A subfolder: the training readers (models.training.corpus.audio_manifest_paths) must not pool
# calls with clips; datasets/splits.py reads it beside the others for its checks.
CALLS_MANIFEST = MANIFEST_DIR / "calls" / "calls.jsonl"
NOTICE_MANIFEST = MANIFEST_DIR / "calls" / f"{NOTICE}.jsonl"
WIDEBAND_MANIFEST = MANIFEST_DIR / "calls" / f"{WIDEBAND}.jsonl"
NOTICE_S = (2.0, 5.0)  # a recorded notice ("this call may be recorded") lasts this long
NOTICE_GAP_S = 0.4  # ... and the agent speaks this long after it ends
DEFAULT_CALLS = {"train": 10, "dev": 20, "test": 20}  # per (language, caller kind)
CALL_S = (20.0, 120.0)  # target call length, uniform
PIECE_S = (1.2, 5.0)  # a caller turn cut from human speech: this long, at pauses
PROMPTS_PER_SET = 7  # greeting, >= 3 pitches, objection, fallback, goodbye
# greeting, pitch, goodbye: the smallest script; a set of fewer than FULL_SCRIPT lines replays
# its pitch for an objection or a question, as the simplest robots do
MIN_PROMPTS = 3
FULL_SCRIPT = 5  # greeting, pitch, objection, fallback, goodbye
MIN_AGENT_PIECES = 3  # an agent says at least three things (its call ends when they run out)
MIN_AGENT_SPEECH_S = 7.5
MIN_CALLEE_SPEECH_S = 2.5  # the clips one callee gets for one call
SPEED_RANGE = (0.93, 1.07)  # per-use speed factor of human excerpts
P_HELLO = 0.5  # the callee speaks first ("喂?" / "hello?")
P_BARGE_IN = 0.3  # the callee interrupts a caller turn longer than 2 s
P_HANG_UP = 0.06  # per callee turn, once the call is 20 s long
CALLEE_TYPES = ("answer", "question", "objection")
CALLEE_TYPE_P = (0.5, 0.25, 0.25)


@dataclasses.dataclass(frozen=True, slots=True)
class Piece:
    """A stretch of one source clip: what a party says in one turn."""

    row_id: str
    start_s: float
    end_s: float
    text: str  # the clip's transcript when the piece is the whole clip, else ""


@dataclasses.dataclass(frozen=True, slots=True)
class Voice:
    key: str  # speaker (human) or "speaker|engine" (TTS)
    language: str
    split: str
    pieces: tuple[Piece, ...]
    engine: str = ""
    source: str = ""  # the corpus source of a human voice

    @property
    def speech_s(self) -> float:
        return sum(p.end_s - p.start_s for p in self.pieces)


@dataclasses.dataclass(frozen=True, slots=True)
class Pools:
    tts: dict[tuple[str, str], list[Voice]]  # (language, split) -> TTS voices
    prompt: dict[tuple[str, str], list[Voice]]  # human speakers whose clips become prompts
    agent: dict[tuple[str, str], list[Voice]]
    callee: dict[tuple[str, str], list[Voice]]
    rows: dict[str, CorpusRow]


def _fits(voice: Voice) -> list[str]:
    out = ["prompt"] if len(voice.pieces) >= MIN_PROMPTS else []
    if len(voice.pieces) >= MIN_AGENT_PIECES and voice.speech_s >= MIN_AGENT_SPEECH_S:
        out.append("agent")
    return [*out, "callee"]


def assign_roles(voices: Sequence[Voice]) -> dict[str, str]:
    """``{speaker: "prompt" | "agent" | "callee"}`` for the human voices of one language and split.

    A speaker fits a prompt set with MIN_PROMPTS pieces and an agent with MIN_AGENT_PIECES pieces
    and MIN_AGENT_SPEECH_S of speech; anyone with speech can be a callee. Roles are given within
    each source: when some source of the split can give a prompt set, the speakers of a source
    that cannot are callees only (an agent of a source no robot is drawn from would tell agents
    from robots by their recording). Within a source, speakers who fit only the callee role are
    placed first, then each other speaker (in hash order, stable) takes the role it fits that has
    the fewest speakers of its source so far, so that a source with few long speakers still
    gets a prompt set and an agent when it can.
    """
    by_source: dict[str, list[Voice]] = {}
    for v in voices:
        by_source.setdefault(v.source, []).append(v)
    robot_sources = {s for s, vs in by_source.items() if any("prompt" in _fits(v) for v in vs)}
    roles = {}
    for source, members in sorted(by_source.items()):
        counts = dict.fromkeys(ROLES, 0)
        callee_only = bool(robot_sources) and source not in robot_sources
        ordered = sorted(
            members, key=lambda v: (len(_fits(v)) > 1, hash_unit(v.key, salt=SALT), v.key)
        )
        for voice in ordered:
            fits = ["callee"] if callee_only else _fits(voice)
            # the fewest for its share (ties: prompt, agent, callee)
            role = min(fits, key=lambda r: counts[r] / ROLE_SHARES[r])
            roles[voice.key] = role
            counts[role] += 1
    return roles


def cut_pieces(row: CorpusRow, samples: np.ndarray) -> list[Piece]:
    """Cut a clip at its pauses into pieces of PIECE_S seconds (a whole short clip is one)."""
    dur = samples.size / STORE_RATE_HZ
    runs = voiced_intervals(samples)
    if not runs:
        return []
    if dur <= PIECE_S[1]:
        a, b = max(runs[0][0] - 0.05, 0.0), min(runs[-1][1] + 0.05, dur)
        return [Piece(row.id, a, b, row.text)] if b - a >= 0.4 else []
    pieces, start, end = [], runs[0][0], runs[0][1]
    for a, b in runs[1:]:
        if b - start > PIECE_S[1] and end - start >= PIECE_S[0]:
            pieces.append(Piece(row.id, max(start - 0.05, 0.0), min(end + 0.05, dur), ""))
            start = a
        end = b
    if end - start >= PIECE_S[0]:
        pieces.append(Piece(row.id, max(start - 0.05, 0.0), min(end + 0.05, dur), ""))
    return [p for p in pieces if p.end_s - p.start_s <= PIECE_S[1] + 2.0]


def build_pools(rows: Sequence[CorpusRow]) -> Pools:
    """Voices by role, language and corpus split; reads every eligible clip once to cut pieces.

    A voice (a human speaker, or a TTS ``speaker|engine``) takes the corpus split of its clips;
    one whose clips straddle splits (none today: ``datasets/splits.py --check``) is left out.
    """
    by_id = {r.id: r for r in rows}
    human: dict[str, list[Piece]] = {}
    tts: dict[str, list[Piece]] = {}
    splits: dict[str, set[str]] = {}
    language: dict[str, str] = {}
    source: dict[str, str] = {}
    for row in sorted(rows, key=lambda r: r.id):
        if row.language not in LANGUAGES or row.duration_s < 0.5:
            continue
        if row.label == "human":
            key = row.speaker
            human.setdefault(key, []).extend(cut_pieces(row, read_clip(resolve_path(row))))
        elif row.kind == "tts" or row.source == "tts_en":
            if row.source.startswith("umelgan") or row.source == "commercial_tts":
                continue  # vocoded copies of recordings and 1-s samples are no prompt sets
            key = f"{row.speaker}|{row.engine}"
            dur = min(row.duration_s, 8.0)
            tts.setdefault(key, []).append(Piece(row.id, 0.0, dur, row.text))
        else:
            continue
        language[key] = row.language
        source.setdefault(key, row.source)
        splits.setdefault(key, set()).add(row.split)
    straddling = sorted(k for k, s in splits.items() if len(s) > 1)
    if straddling:
        log.warning("left out, clips in several splits: %s", straddling)
    pools = Pools({}, {}, {}, {}, by_id)
    for key, pieces in sorted(tts.items()):
        if len(pieces) >= MIN_PROMPTS and key not in straddling:
            (split,) = splits[key]
            voice = Voice(key, language[key], split, tuple(pieces), engine=key.split("|")[1])
            pools.tts.setdefault((voice.language, split), []).append(voice)
    humans: dict[tuple[str, str], list[Voice]] = {}
    for key, pieces in sorted(human.items()):
        if pieces and key not in straddling:
            (split,) = splits[key]
            humans.setdefault((language[key], split), []).append(
                Voice(key, language[key], split, tuple(pieces), source=source[key])
            )
    for cell, voices in sorted(humans.items()):
        roles = assign_roles(voices)
        for voice in voices:
            target = {"prompt": pools.prompt, "agent": pools.agent, "callee": pools.callee}
            target[roles[voice.key]].setdefault(cell, []).append(voice)
    return pools


_ROWS: dict[str, CorpusRow] = {}  # every source row by id (set by main, read by _clip)


@functools.lru_cache(maxsize=128)
def _clip(row_id: str) -> np.ndarray:
    return read_clip(resolve_path(_ROWS[row_id]))


def piece_audio(piece: Piece, *, speed: float = 1.0) -> np.ndarray:
    """Samples of a piece (16 kHz float64), 15 ms fades; ``speed`` != 1 resamples (pitch too)."""
    x = _clip(piece.row_id)
    x = x[int(piece.start_s * STORE_RATE_HZ) : int(piece.end_s * STORE_RATE_HZ)].astype(np.float64)
    if speed != 1.0:
        x = signal.resample_poly(x, 1000, int(round(1000 * speed)))
    rms = float(np.sqrt(np.mean(x**2))) or 1.0
    x = x * (0.05 / rms)
    fade = min(int(0.015 * STORE_RATE_HZ), x.size // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        x[:fade] *= ramp
        x[x.size - fade :] *= ramp[::-1]
    return np.asarray(x)


@dataclasses.dataclass(slots=True)
class Event:
    role: str  # "caller" | "callee"
    kind: str  # prompt / turn / continuation / backchannel / repair / hello / answer / ...
    start_s: float
    samples: np.ndarray
    prompt_id: str = ""
    part: str = ""
    text: str = ""

    @property
    def end_s(self) -> float:
        return self.start_s + self.samples.size / STORE_RATE_HZ

    def cut(self, at_s: float) -> None:
        n = max(int((at_s - self.start_s) * STORE_RATE_HZ), int(0.1 * STORE_RATE_HZ))
        x = self.samples[:n].copy()
        fade = min(int(0.02 * STORE_RATE_HZ), x.size // 2)
        x[x.size - fade :] *= np.linspace(1.0, 0.0, fade)
        self.samples, self.text = x, ""


class Caller:
    """Who places the call: the next turn, the latency before it, what a barge-in does."""

    def __init__(self, kind: str, voice: Voice, campaign: str, rng: np.random.Generator):
        self.kind, self.voice, self.rng = kind, voice, rng
        self.is_robot = kind != "human_agent"
        crng = seeded_rng(NAME, "campaign", campaign)  # per campaign, not per call
        self.latency_s = float(crng.uniform(0.5, 1.4))
        self.jitter_s = float(crng.uniform(0.02, 0.06))
        self.barge_mode = "ignore" if crng.uniform() < 0.5 else "restart"
        self.stop_s = float(crng.uniform(0.25, 0.5))  # restart: how fast the prompt stops
        self.prompts = list(voice.pieces[:PROMPTS_PER_SET])
        self.pitch = 1
        order = rng.permutation(len(voice.pieces)) if not self.is_robot else np.arange(0)
        self.queue = [voice.pieces[int(i)] for i in order]

    @property
    def has_one_turn_left(self) -> bool:
        """An agent whose speaker has one piece of speech left ends the call with it."""
        return not self.is_robot and len(self.queue) <= 1

    def latency(self) -> float:
        if self.is_robot:
            return max(0.2, self.latency_s + float(self.rng.normal(0.0, self.jitter_s)))
        return float(np.clip(self.rng.normal(0.45, 0.45), -0.4, 2.5))

    def _prompt(self, index: int) -> Event:
        piece = self.prompts[index]
        pid = f"{self.voice.key}#{index}"
        return Event("caller", "prompt", 0.0, piece_audio(piece), pid, piece.row_id, piece.text)

    def turn(self, callee_type: str, *, first: bool, last: bool) -> list[Event]:
        """The caller's next turn (robot: script tree; agent: next excerpt, maybe a repair)."""
        n = len(self.prompts)
        if self.is_robot:
            full = n >= FULL_SCRIPT
            if first:
                return [self._prompt(0)]
            if last:
                return [self._prompt(n - 1)]
            if full and callee_type == "question":
                return [self._prompt(n - 2)]  # the fallback: the same off-topic line every time
            if full and callee_type == "objection":
                return [self._prompt(n - 3)]
            if callee_type != "answer":  # a short script has no handler: the pitch again
                return [self._prompt(self.pitch)]
            index = self.pitch
            self.pitch = self.pitch % (n - 4 if full else n - 2) + 1  # pitches: prompts 1, 2, ...
            return [self._prompt(index)]
        piece = self.queue.pop()  # never twice: a person does not say a sentence twice alike
        x = piece_audio(piece, speed=float(self.rng.uniform(*SPEED_RANGE)))
        ev = Event("caller", "turn", 0.0, x, "", piece.row_id, piece.text)
        if self.rng.uniform() < 0.1 and x.size > 2 * STORE_RATE_HZ:  # a false start, then again
            false_start = x[: int(self.rng.uniform(0.3, 0.7) * STORE_RATE_HZ)].copy()
            false_start[-160:] *= np.linspace(1.0, 0.0, 160)
            return [Event("caller", "repair", 0.0, false_start, "", piece.row_id), ev]
        return [ev]


def _callee_piece(voice: Voice, rng: np.random.Generator, kind: str, max_s: float) -> Event:
    piece = voice.pieces[int(rng.integers(len(voice.pieces)))]
    x = piece_audio(piece, speed=float(rng.uniform(*SPEED_RANGE)))
    n = int(rng.uniform(0.4, max_s) * STORE_RATE_HZ)
    text = piece.text if x.size <= n else ""
    if x.size > n:
        start = int(rng.integers(0, x.size - n))
        x = x[start : start + n].copy()
        fade = min(320, x.size // 2)
        x[:fade] *= np.linspace(0.0, 1.0, fade)
        x[x.size - fade :] *= np.linspace(1.0, 0.0, fade)
    return Event("callee", kind, 0.0, x, "", piece.row_id, text)


def _backchannel(voice: Voice, rng: np.random.Generator) -> Event:
    """A short vocalisation (0.15-0.45 s around a loud frame) of the agent: "嗯", "right"."""
    piece = voice.pieces[int(rng.integers(len(voice.pieces)))]
    x = piece_audio(piece, speed=float(rng.uniform(*SPEED_RANGE)))
    n = int(rng.uniform(0.15, 0.45) * STORE_RATE_HZ)
    hop = 320
    energy = np.array([np.mean(x[i : i + hop] ** 2) for i in range(0, max(x.size - n, 1), hop)])
    centre = int(np.argmax(energy)) * hop
    y = x[centre : centre + n].copy()
    fade = min(160, y.size // 2)
    y[:fade] *= np.linspace(0.0, 1.0, fade)
    y[y.size - fade :] *= np.linspace(1.0, 0.0, fade)
    return Event("caller", "backchannel", 0.0, y * 0.8, "", piece.row_id)


def simulate_call(
    caller: Caller, callee: Voice, rng: np.random.Generator, target_s: float
) -> list[Event]:
    """Place every turn of one call on a timeline (the dialogue logic of the module doc)."""
    events: list[Event] = []

    def place(ev: Event, at_s: float) -> Event:
        ev.start_s = max(at_s, 0.0)
        events.append(ev)
        return ev

    t = float(rng.uniform(0.3, 1.0))
    if rng.uniform() < P_HELLO:
        hello = place(_callee_piece(callee, rng, "hello", 1.0), t)
        t = hello.end_s + caller.latency()
    callee_type, first, restart_with = "answer", True, None
    while True:
        last = t > target_s or (caller.has_one_turn_left and restart_with is None)
        turn = restart_with or caller.turn(callee_type, first=first, last=last)
        restart_with, first = None, False
        for ev in turn:
            place(ev, t)
            t = ev.end_s + (float(rng.uniform(0.15, 0.4)) if ev.kind == "repair" else 0.0)
        main = events[-1]
        if last:
            break
        dur = main.end_s - main.start_s
        callee_type = CALLEE_TYPES[int(rng.choice(3, p=CALLEE_TYPE_P))]
        if dur > 2.0 and rng.uniform() < P_BARGE_IN:
            onset = main.start_s + float(rng.uniform(0.3, 0.7)) * dur
            reply = place(_callee_piece(callee, rng, f"barge_in_{callee_type}", 3.0), onset)
            if caller.is_robot and caller.barge_mode == "ignore":
                t = max(main.end_s, reply.end_s) + caller.latency()
                continue
            if caller.is_robot:  # stop, let the callee finish, replay the prompt from its start
                full = main.samples
                main.cut(onset + caller.stop_s)
                restart_with = [Event("caller", "restart", 0.0, full, main.prompt_id, main.part)]
                t = reply.end_s + caller.latency()
                continue
            rest_at = onset + float(rng.uniform(0.2, 0.9))
            rest = main.samples[int((rest_at - main.start_s) * STORE_RATE_HZ) :]
            main.cut(rest_at)
            t = reply.end_s + caller.latency()
            if rest.size > 0.6 * STORE_RATE_HZ:  # go on with the rest of the sentence
                fade = min(320, rest.size // 2)
                rest = rest.copy()
                rest[:fade] *= np.linspace(0.0, 1.0, fade)
                restart_with = [Event("caller", "continuation", 0.0, rest, "", main.part)]
            continue
        reply = place(
            _callee_piece(callee, rng, callee_type, 4.5), main.end_s + float(rng.uniform(0.2, 1.2))
        )
        if not caller.is_robot and reply.end_s - reply.start_s > 1.5 and rng.uniform() < 0.7:
            bc = _backchannel(caller.voice, rng)
            place(bc, reply.start_s + float(rng.uniform(0.5, reply.end_s - reply.start_s - 0.4)))
        if reply.end_s > 20.0 and rng.uniform() < P_HANG_UP:
            break  # the callee hangs up
        t = reply.end_s + caller.latency()
    return sorted(events, key=lambda e: (e.start_s, e.role))


def render(
    events: Sequence[Event], rng: np.random.Generator, *, audio: bool = True, wideband: bool = False
) -> tuple[np.ndarray, np.ndarray, str]:
    """Caller and callee channels through the telephone channel (one codec per call).

    ``audio=False`` makes the same random draws without the channel (zeros out): a rebuild that
    finds the files in place still gets the same codec, caller channel and mono gain.
    ``wideband``: the same draws through ``pipeline.telephone.wideband_channel`` instead (no
    codec: the codec returned is "wideband").
    """
    n = int((max(e.end_s for e in events) + float(rng.uniform(0.3, 1.0))) * STORE_RATE_HZ)
    sides = {"caller": np.zeros(n), "callee": np.zeros(n)}
    for ev in events:
        i = int(ev.start_s * STORE_RATE_HZ)
        x = ev.samples[: n - i]
        sides[ev.role][i : i + x.size] += x
    config = ChannelConfig(trim=False)
    params = draw_channel_params(rng, config)
    out = []
    for role in ("caller", "callee"):
        tone = rng.standard_normal(n) * 10 ** (float(rng.uniform(-68, -58)) / 20)
        side_params = dataclasses.replace(
            draw_channel_params(rng, config),
            codec=params.codec,
            amr_bitrate_bps=params.amr_bitrate_bps,
        )
        if not audio:
            out.append(np.zeros(n))
            continue
        if wideband:
            y = wideband_channel(
                sides[role] + tone, sample_rate_hz=STORE_RATE_HZ, params=side_params
            )
        else:
            y = apply_channel(
                sides[role] + tone, sample_rate_hz=STORE_RATE_HZ, params=side_params, config=config
            )
        y = np.pad(y, (0, max(n - y.size, 0)))[:n]
        out.append(y.astype(np.float64))
    return out[0], out[1], WIDEBAND if wideband else params.codec


def segments_of(events: Sequence[Event]) -> list[dict[str, object]]:
    return [
        {
            "role": e.role,
            "kind": e.kind,
            "start_s": round(e.start_s, 3),
            "end_s": round(e.end_s, 3),
            "prompt_id": e.prompt_id,
            "part": e.part,
            "text": e.text,
        }
        for e in events
    ]


def _write(path: Path, samples: np.ndarray) -> float:
    """16 kHz 16-bit FLAC, mono (n,) or stereo (n, 2); peaks scaled below full scale."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    x = samples * (0.999 / peak) if peak > 0.999 else samples
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    sf.write(tmp, x.astype(np.float32), STORE_RATE_HZ, format="FLAC", subtype="PCM_16")
    tmp.replace(path)
    return round(float(samples.shape[0]) / STORE_RATE_HZ, 3)


@dataclasses.dataclass(frozen=True, slots=True)
class CallPlan:
    """One call to build: who calls saying what, who answers with which clips, how long."""

    language: str
    kind: str  # a key of CALLER_KINDS
    split: str
    index: int
    caller: Voice  # a robot's prompt set (the same in every call of its campaign), or the
    # clips an agent says in this call and in no other
    callee: Voice  # the clips the callee says in this call and in no other
    target_s: float

    @property
    def call_id(self) -> str:
        return f"{self.language}/{self.kind}/{self.split}/{self.index:04d}"

    @property
    def campaign(self) -> str:
        return f"{self.kind}:{self.caller.key}" if CALLER_KINDS[self.kind] == "robot" else ""


def prompt_set(voice: Voice) -> Voice:
    """The PROMPTS_PER_SET pieces a campaign replays, fixed per voice (seeded), in clip order."""
    order = seeded_rng(NAME, "prompt_set", voice.key).permutation(len(voice.pieces))
    pieces = tuple(voice.pieces[i] for i in sorted(order[:PROMPTS_PER_SET]))
    return dataclasses.replace(voice, pieces=pieces)


def speech_bundles(
    voice: Voice, *, min_pieces: int, min_speech_s: float, exclude: frozenset[Piece] = frozenset()
) -> list[Voice]:
    """The voice's pieces (but ``exclude``) dealt into bundles, each the least run of pieces that
    holds ``min_pieces`` pieces and ``min_speech_s`` of speech: what one call gets, and no other.

    Pieces are disjoint stretches of their clips (:func:`cut_pieces`), so two calls never share
    a moment of audio, though two pieces of one long clip may go to two calls. Clips are taken
    in a seeded order, each clip's pieces in time order; the pieces left over join the last
    bundle.
    """
    order = sorted(
        (p for p in voice.pieces if p not in exclude),
        key=lambda p: (hash_unit(p.row_id, salt=SALT), p.row_id, p.start_s),
    )
    bundles: list[list[Piece]] = []
    current: list[Piece] = []
    for piece in order:
        current.append(piece)
        if len(current) >= min_pieces and sum(p.end_s - p.start_s for p in current) >= min_speech_s:
            bundles.append(current)
            current = []
    if current and bundles:
        bundles[-1] += current
    return [dataclasses.replace(voice, pieces=tuple(b)) for b in bundles]


def _interleave(groups: Sequence[Sequence[Voice]]) -> list[Voice]:
    """The first of every group, then the second of every group, ... (calls spread over voices)."""
    longest = max((len(g) for g in groups), default=0)
    return [g[i] for i in range(longest) for g in groups if i < len(g)]


def _by_hash(voices: Sequence[Voice]) -> list[Voice]:
    return sorted(voices, key=lambda v: (hash_unit(v.key, salt=SALT), v.key))


def _agent_bundles(pools: Pools, key: tuple[str, str], n: int) -> list[Voice]:
    """The clips of up to ``n`` agent calls of one language and split, sources taken in turn.

    Only sources that also give a prompt set are used when there is one (see the module doc); a
    source with a prompt speaker but no agent speaker lends the prompt speakers' other clips.
    """
    prompts = pools.prompt.get(key, [])
    reserved = frozenset(p for v in prompts for p in prompt_set(v).pieces)
    voices = list(pools.agent.get(key, []))
    voices += [v for v in prompts if v.source not in {a.source for a in voices}]
    queues: dict[str, list[Voice]] = {}
    for source in sorted({v.source for v in voices}):
        per_voice = [
            speech_bundles(
                v, min_pieces=MIN_AGENT_PIECES, min_speech_s=MIN_AGENT_SPEECH_S, exclude=reserved
            )
            for v in _by_hash([v for v in voices if v.source == source])
        ]
        if any(per_voice):
            queues[source] = _interleave(per_voice)
    shared = [s for s in queues if s in {v.source for v in prompts}]
    if prompts and queues and not shared:
        log.warning(
            "%s/%s: recorded prompts from %s, agents from %s: the source tells them apart",
            *key,
            sorted({v.source for v in prompts}),
            sorted(queues),
        )
    use = shared or sorted(queues)
    out: list[Voice] = []
    while len(out) < n and any(queues[s] for s in use):
        for source in use:
            if queues[source] and len(out) < n:
                out.append(queues[source].pop(0))
    return out


def _robot_callers(
    pools: Pools, key: tuple[str, str], n: int, agents: Sequence[Voice]
) -> dict[str, list[Voice]]:
    """The caller voice of each robot call of one language and split, by kind.

    A recorded-prompt robot's call ``i`` is of the source of the agent's call ``i`` (cycled),
    when those sources give prompt sets, so both kinds have the same mix of sources.
    """
    language, split = key
    prompts = pools.prompt.get(key, [])
    prompt_sources = sorted({v.source for v in prompts})
    matched = [a.source for a in agents if a.source in prompt_sources]
    order = matched if len(matched) == len(agents) and matched else prompt_sources
    out: dict[str, list[Voice]] = {"tts_robot": [], "recorded_robot": []}
    for i in range(n):
        rng = seeded_rng(NAME, language, "tts_robot", split, i, "plan")
        tts = pools.tts.get(key, [])
        if tts:
            out["tts_robot"].append(prompt_set(tts[int(rng.integers(len(tts)))]))
        if order:
            source = order[i % len(order)]
            choices = _by_hash([v for v in prompts if v.source == source])
            rng = seeded_rng(NAME, language, "recorded_robot", split, i, "plan")
            out["recorded_robot"].append(prompt_set(choices[int(rng.integers(len(choices)))]))
    return out


def allocate_calls(pools: Pools, counts: dict[str, int]) -> tuple[list[CallPlan], Counter[str]]:
    """Every call to build, and how many asked-for calls each (language/kind/split) cell lacks.

    ``counts``: calls per (language, caller kind) of each split. Robot calls reuse their prompt
    set; every piece of an agent's or a callee's speech goes to one call only
    (:func:`speech_bundles`).
    Callees are dealt call index by call index over the three kinds, so that when callee clips
    run out every kind loses calls alike; a callee is never the speaker its caller is (a TTS
    voice imitates a speaker who may be a callee here).
    """
    plans: list[CallPlan] = []
    missing: Counter[str] = Counter()
    for language in LANGUAGES:
        for split, n in counts.items():
            key = (language, split)
            agents = _agent_bundles(pools, key, n)
            callers = {**_robot_callers(pools, key, n, agents), "human_agent": agents}
            callees = _interleave(
                [
                    speech_bundles(v, min_pieces=1, min_speech_s=MIN_CALLEE_SPEECH_S)
                    for v in _by_hash(pools.callee.get(key, []))
                ]
            )
            built: Counter[str] = Counter()
            for i in range(n):
                for kind in CALLER_KINDS:
                    if i >= len(callers[kind]):
                        continue
                    caller = callers[kind][i]
                    speaker = caller.key.split("|")[0]
                    pick = next((c for c in callees if c.key != speaker), None)
                    if pick is None:
                        continue
                    callees.remove(pick)
                    length_s = seeded_rng(NAME, language, kind, split, i, "length").uniform(*CALL_S)
                    plans.append(CallPlan(language, kind, split, i, caller, pick, float(length_s)))
                    built[kind] += 1
            for kind in CALLER_KINDS:
                if n > built[kind]:
                    missing[f"{language}/{kind}/{split}"] += n - built[kind]
    return plans, missing


def notice_pieces(pools: Pools, plans: Sequence[CallPlan]) -> dict[tuple[str, str], Piece]:
    """The recorded notice of each (language, split) call centre: one piece, NOTICE_S long, of a
    human voice of that cell that no planned call says (a clip left over of a callee, an agent or
    a prompt speaker beyond its prompt set), chosen by hash. A cell without one gets no notice.
    """
    used = {p for plan in plans for v in (plan.caller, plan.callee) for p in v.pieces}
    out: dict[tuple[str, str], Piece] = {}
    for cell in sorted({(p.language, p.split) for p in plans if p.kind == "human_agent"}):
        free = sorted(
            (
                p
                for pool in (pools.callee, pools.agent, pools.prompt)
                for v in pool.get(cell, [])
                for p in v.pieces
                if p not in used and NOTICE_S[0] <= p.end_s - p.start_s <= NOTICE_S[1]
            ),
            key=lambda p: (hash_unit(f"{p.row_id}@{p.start_s}", salt=SALT), p.row_id, p.start_s),
        )
        if free:
            out[cell] = free[0]
        else:
            log.warning("%s/%s: no clip left over for a notice: no notice calls", *cell)
    return out


def with_notice(events: Sequence[Event], notice: Piece, *, start_s: float = 0.3) -> list[Event]:
    """The call opening with the notice: the same recording in every call of its centre, then
    the call as it was, every event moved later by the notice and NOTICE_GAP_S."""
    x = piece_audio(notice)
    shift = start_s + x.size / STORE_RATE_HZ + NOTICE_GAP_S
    for ev in events:
        ev.start_s += shift
    return [Event("caller", NOTICE, start_s, x, NOTICE, notice.row_id, notice.text), *events]


def make_rows(
    *,
    call_id: str,
    language: str,
    kind: str,
    split: str,
    caller: Caller,
    callee: Voice,
    campaign: str,
    events: Sequence[Event],
    durations: dict[str, float],
    caller_channel: int,
    codec: str,
    mono_gain_db: float,
    variant: str = "",
) -> list[CorpusRow]:
    """Both layouts' manifest rows of one call; ``variant`` (NOTICE, WIDEBAND) names a copy of
    the call (an agent call that opens with a notice; the call on a wideband line): its own ids
    and folder, the original call's group."""
    suffix = f"_{variant}" if variant else ""
    name, audio_dir = NAME + suffix, AUDIO_DIR + suffix
    parts = tuple(dict.fromkeys(e.part for e in events if e.part))
    licences = sorted({_ROWS[p].licence for p in parts if p in _ROWS})
    extra_common = (
        ("caller_kind", kind),
        ("caller_source", caller.voice.source or caller.voice.engine),
        ("callee_speaker", callee.key),
        ("callee_source", callee.source),
        ("barge_in_mode", caller.barge_mode if caller.is_robot else "yield"),
        ("latency_base_s", f"{caller.latency_s:.3f}" if caller.is_robot else ""),
        ("codec", codec),
        ("segments", json.dumps(segments_of(events), ensure_ascii=False, separators=(",", ":"))),
    )
    rows = []
    for layout in LAYOUTS:
        rows.append(
            CorpusRow(
                id=f"{name}/{layout}/{call_id}",
                path=f"{audio_dir}/{layout}/{call_id}.flac",
                root="cache",
                label=CALLER_KINDS[kind],
                kind=f"call_{kind}",
                language=language,
                speaker=caller.voice.key.split("|")[0],
                engine=caller.voice.engine,
                engine_family=caller.voice.engine.split(":")[0] if caller.voice.engine else "",
                source=NAME,
                group_id=f"{NAME}/{call_id}",
                campaign=campaign if caller.is_robot else "",
                split=split,
                duration_s=durations[layout],
                orig_sr_hz=STORE_RATE_HZ,
                licence="mixture of: " + " | ".join(licences),
                text=" ".join(e.text for e in events if e.role == "caller" and e.text),
                parts=parts,
                extra=(
                    ("layout", layout),
                    ("caller_channel", str(caller_channel) if layout == "stereo" else "0"),
                    ("mono_gain_db", f"{mono_gain_db:.1f}" if layout == "mono" else ""),
                    *extra_common,
                ),
            )
        )
    return rows


def parse_counts(text: str) -> dict[str, int]:
    counts = dict(DEFAULT_CALLS)
    for item in filter(None, text.split(",")):
        split, _, n = item.partition("=")
        if split not in SPLITS:
            raise ValueError(f"--calls-per-split: unknown split {split!r}")
        counts[split] = int(n)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = builder_parser(__doc__.splitlines()[0], name=NAME)
    parser.set_defaults(manifest=None)
    parser.add_argument("--calls-per-split", default="", help="e.g. train=10,dev=20,test=20")
    parser.add_argument("--manifest-dir", type=Path, default=MANIFEST_DIR)
    parser.add_argument(
        "--notice",
        action="store_true",
        help="build only the agent calls again, each opening with its call centre's recorded "
        f"notice (folder {AUDIO_DIR}_{NOTICE}, manifest {NOTICE_MANIFEST.name})",
    )
    parser.add_argument(
        "--wideband",
        action="store_true",
        help="build the calls again on a wideband line (50-7000 Hz, 16 kHz, no codec; folder "
        f"{AUDIO_DIR}_{WIDEBAND}, manifest {WIDEBAND_MANIFEST.name})",
    )
    parser.add_argument("--splits", default="", help="build only these splits (e.g. test)")
    args = parser.parse_args(argv)
    if args.notice and args.wideband:
        parser.error("--notice and --wideband are two variants: build one at a time")
    variant = NOTICE if args.notice else WIDEBAND if args.wideband else ""
    manifest = args.manifest or {NOTICE: NOTICE_MANIFEST, WIDEBAND: WIDEBAND_MANIFEST}.get(
        variant, CALLS_MANIFEST
    )
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    rows_in: list[CorpusRow] = []
    for name in ("shared", "tts_en"):
        path = args.manifest_dir / f"{name}.jsonl"
        if path.is_file():
            rows_in += read_manifest(path)
        else:
            log.warning("%s is missing: its clips are not used", path)
    _ROWS.update({r.id: r for r in rows_in})
    pools = build_pools(rows_in)
    for name, pool in (
        ("tts", pools.tts),
        ("prompt", pools.prompt),
        ("agent", pools.agent),
        ("callee", pools.callee),
    ):
        log.info("%s voices: %s", name, {f"{k[0]}/{k[1]}": len(v) for k, v in sorted(pool.items())})
    out = args.out or corpus_cache_dir() / (AUDIO_DIR + (f"_{variant}" if variant else ""))
    plans, missing = allocate_calls(pools, parse_counts(args.calls_per_split))
    notices = notice_pieces(pools, plans) if args.notice else {}
    if args.notice:
        plans = [p for p in plans if p.kind == "human_agent" and (p.language, p.split) in notices]
        missing.clear()
    if args.splits:
        plans = [p for p in plans if p.split in args.splits.split(",")]
    plans = plans[: args.limit] if args.limit is not None else plans
    rows: list[CorpusRow] = []
    for plan in tqdm(plans, desc=NAME, unit="call", disable=args.no_progress):
        language, kind, split, call_id = plan.language, plan.kind, plan.split, plan.call_id
        caller_rng = seeded_rng(NAME, language, kind, split, plan.index, "caller")
        caller = Caller(kind, plan.caller, plan.campaign, caller_rng)
        callee, campaign, target_s = plan.callee, plan.campaign, plan.target_s
        rng = seeded_rng(NAME, call_id, "render")
        events = simulate_call(caller, callee, seeded_rng(NAME, call_id, "dialogue"), target_s)
        if args.notice:
            events = with_notice(events, notices[(language, split)])
        paths = {layout: out / layout / f"{call_id}.flac" for layout in LAYOUTS}
        in_place = all(p.is_file() for p in paths.values())  # same seed: same audio, skip it
        caller_side, callee_side, codec = render(
            events, rng, audio=not in_place, wideband=args.wideband
        )
        caller_channel = int(rng.integers(2))
        mono_gain_db = float(rng.uniform(-6.0, 6.0))
        if in_place:
            durations = {k: round(sf.info(p).frames / STORE_RATE_HZ, 3) for k, p in paths.items()}
        else:
            order = 1 if caller_channel == 0 else -1
            stereo = np.stack([caller_side, callee_side][::order], axis=1)
            mono = caller_side + callee_side * 10 ** (mono_gain_db / 20)
            durations = {
                "stereo": _write(paths["stereo"], stereo),
                "mono": _write(paths["mono"], mono),
            }
        rows += make_rows(
            call_id=call_id,
            language=language,
            kind=kind,
            split=split,
            caller=caller,
            callee=callee,
            campaign=campaign,
            events=events,
            durations=durations,
            caller_channel=caller_channel,
            codec=codec,
            mono_gain_db=mono_gain_db,
            variant=variant,
        )
    for cell, n in sorted(missing.items()):
        log.warning("%s: %d of the calls asked for not built (too few voices or clips)", cell, n)
    write_manifest(rows, manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
