"""Evidence from the prompt index: "this prompt was heard in N other calls" (issue 5).

:func:`prompt_seen_before` looks one call up (``robocall analyze --prompt-index``, through
:class:`PromptCue`) and counts every other call in the index; in a batch, :func:`assign_campaign`
records each call and counts only the calls recorded before it, so that a call's verdict does not
depend on calls that came after it; :func:`count_other_calls` fills the campaign sizes at the end.
:func:`leave_one_out` gives each call of a set the evidence of an index over the other calls (a
carrier's view of one call, for measuring the cue on simulated calls).
The index itself (matching, storage) is :mod:`service.campaigns.index`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from pipeline.fingerprint import landmarks, landmarks_from_bytes
from pipeline.messages import make_evidence
from pipeline.types import Audio, Evidence, Transcript, Turns
from service.campaigns.index import (
    EVIDENCE_NAME,
    MAX_EVIDENCE_WEIGHT,
    REPLAY_SHARE_FULL,
    REPLAY_SHARE_NONE,
    CallPrint,
    MatchMethod,
    PromptIndex,
    Sightings,
)


def evidence_weight(sightings: Sightings, method: MatchMethod, *, share: float = 1.0) -> float:
    """Hand-set (untrained) robot logit for a prompt heard before; grows with calls and numbers.

    A replayed *recording* is a robot's signature when it is most of what the caller says
    (``share``, see :func:`share_factor`); the same *script* (text only) is also what a room of
    human agents reads, so it weighs a quarter.
    """
    raw = 0.5 * math.log1p(sightings.other_calls) + 0.5 * math.log1p(sightings.other_numbers)
    factor = share_factor(share) if method == "audio" else 0.25
    return round(min(MAX_EVIDENCE_WEIGHT, raw) * factor, 4)


def share_factor(share: float) -> float:
    """How much of the audio match counts: 0 at or below :data:`REPLAY_SHARE_NONE` of the caller's
    sounding time replayed, 1 from :data:`REPLAY_SHARE_FULL`, linear between."""
    span = REPLAY_SHARE_FULL - REPLAY_SHARE_NONE
    return min(1.0, max(0.0, (share - REPLAY_SHARE_NONE) / span))


def prompt_seen_before(
    audio: Audio, *, index: PromptIndex, transcript: str = "", record: bool = False,
    caller_number: str | None = None, start_time: str | None = None,
    caller_turns: Turns | None = None,
) -> Evidence | None:  # fmt: skip
    """Evidence that this call's prompt was heard in other calls, for the fusion to add.

    Parameters
    ----------
    audio : Audio
        The decoded call; its caller channel is fingerprinted.
    index : PromptIndex
    transcript : str
        The caller's transcript (enables the text match).
    record : bool
        Also add this call to the index (a single upload that should count for later ones).
    caller_number, start_time : str, optional
        Stored with the sighting when ``record``.
    caller_turns : tuple of (float, float), optional
        A mono call's caller speech (``Verdict.caller_turns``): only it counts in the share of
        the caller's speech that replays the match. None: the whole caller channel.

    Returns
    -------
    Evidence or None
        ``Evidence(source="structure", name="prompt_seen_before", value=<other calls>, ...)``;
        None when no other call carried this prompt.
    """
    call = CallPrint(
        call_key=audio.info.sha256,
        landmarks=landmarks(audio.caller(), sample_rate_hz=audio.sample_rate_hz),
        transcript=transcript,
        caller_number=caller_number,
        start_time=start_time,
        caller_turns=caller_turns,
    )
    return _seen_before(call, index=index, record=record)


def _seen_before(call: CallPrint, *, index: PromptIndex, record: bool) -> Evidence | None:
    if record:
        index.add(call)
    # once recorded, the match as the index keeps it (the call that founded a campaign: an
    # audio match with the largest share of the calls that matched it)
    found = index.match(call)
    if found is None:
        return None
    seen = index.sightings(found.campaign_id, exclude_call_key=call.call_key)
    return prompt_evidence(seen, found.method, share=found.share)


def prompt_evidence(
    seen: Sightings, method: MatchMethod, *, share: float = 1.0, before: bool = False
) -> Evidence | None:
    """``prompt_seen_before`` evidence for these sightings; None when there are no other calls.

    ``share``: of the caller's sounding time, what replays the matched call (audio matches).
    ``before``: the sightings are those recorded before the call (a batch), and the sentence
    says so.
    """
    if seen.other_calls == 0:
        return None
    if method == "audio":
        code = f"{EVIDENCE_NAME}.audio" + ("" if share_factor(share) > 0 else "_part")
    else:
        code = f"{EVIDENCE_NAME}.script"
    return make_evidence(
        "structure",
        EVIDENCE_NAME,
        value=float(seen.other_calls),
        weight=evidence_weight(seen, method, share=share),
        code=code + ("_numbers" if seen.other_numbers else ""),
        params={
            "calls": float(seen.other_calls),
            "numbers": float(seen.other_numbers),
            "when": "earlier" if before else "other",
            "campaign": str(seen.campaign_id),
            "method": method,
            "share": round(float(share), 3),
        },
    )


def leave_one_out(
    calls: Sequence[tuple[Audio, str]], *, caller_turns: Sequence[Turns | None] | None = None
) -> list[Evidence | None]:
    """``prompt_seen_before`` of each call against an index of every *other* call (carrier mode).

    For each call, a fresh in-memory index records the other calls in the order given (as a
    batch records them) and the call is looked up, not recorded, as :class:`PromptCue` does: the
    evidence counts every other call of the campaign it matches. The fingerprint of each call is
    taken once. ``models/training/fusion_calls.py`` measures the cue on simulated calls with it
    (passed in: training code does not import the service).

    Parameters
    ----------
    calls : sequence of (Audio, str)
        The decoded calls (their ``info.sha256`` tells them apart) and each caller's transcript.
    caller_turns : sequence of (tuple of (float, float) or None), optional
        Each call's caller speech on a mono recording (``Verdict.caller_turns``), None where
        the caller channel is all the caller's; by default None for every call.

    Returns
    -------
    list of Evidence or None
        One per call, in order; None where no other call carried its prompt.
    """
    turns = [None] * len(calls) if caller_turns is None else list(caller_turns)
    if len(turns) != len(calls):
        raise ValueError(f"{len(turns)} caller turns for {len(calls)} calls")
    prints = [
        CallPrint(
            call_key=audio.info.sha256,
            landmarks=landmarks(audio.caller(), sample_rate_hz=audio.sample_rate_hz),
            transcript=transcript,
            caller_turns=own,
        )
        for (audio, transcript), own in zip(calls, turns, strict=True)
    ]
    out: list[Evidence | None] = []
    for i, call in enumerate(prints):
        with PromptIndex() as index:
            for j, other in enumerate(prints):
                if j != i:
                    index.add(other, commit=False)
            out.append(_seen_before(call, index=index, record=False))
    return out


class PromptCue:
    """A :class:`pipeline.types.ContextCue`: ``prompt_seen_before`` from a prompt index, looked up
    only (never recorded), for ``Detector(context_cues=(PromptCue(index),))``."""

    def __init__(self, index: PromptIndex) -> None:
        self.index = index

    def __call__(
        self, audio: Audio, transcript: Transcript, *, caller_turns: Turns | None = None
    ) -> Evidence | None:
        return prompt_seen_before(
            audio, index=self.index, transcript=transcript.text, caller_turns=caller_turns
        )


def assign_campaign(row: dict[str, Any], *, index: PromptIndex) -> Evidence | None:
    """Record one analysed batch row in the index; set its ``campaign_id`` and ``campaign_match``.

    Rows are fed in the order the calls are recorded in (the batch's input order); the index
    keeps that order, so feeding a row again (a resumed batch) changes nothing. Error rows (and
    rows without audio) get None. Commit the index (:meth:`PromptIndex.commit`) before the rows
    are written anywhere durable.

    Returns
    -------
    Evidence or None
        ``prompt_seen_before`` for the calls of this prompt recorded before this one (earlier
        batches in the index, earlier rows of this one), for the caller to fuse into the verdict.
    """
    row.update(campaign_id=None, campaign_match=None, prompt_other_calls=None,
               prompt_other_numbers=None)  # fmt: skip
    if row.get("status") != "ok" or not row.get("audio_sha256"):
        return None
    call_key = row["audio_sha256"]
    campaign_id, found = index.add(
        CallPrint(
            call_key=call_key,
            landmarks=landmarks_from_bytes(row.get("audio_fingerprint")),
            transcript=row.get("transcript") or "",
            caller_number=row.get("caller_number"),
            start_time=row.get("start_time"),
            caller_turns=verdict_caller_turns(row.get("verdict_json")),
        ),
        commit=False,
    )
    row["campaign_id"] = campaign_id
    row["campaign_match"] = found.method if found else "new"
    earlier = index.sightings(campaign_id, exclude_call_key=call_key, before=True)
    if found is None:
        return prompt_evidence(earlier, "audio", before=True)
    return prompt_evidence(earlier, found.method, share=found.share, before=True)


def verdict_caller_turns(verdict_json: str | None) -> Turns | None:
    """``caller_turns`` of a batch row's verdict (None: stereo, or a verdict before schema 4)."""
    turns = json.loads(verdict_json).get("caller_turns") if verdict_json else None
    return None if turns is None else tuple((float(a), float(b)) for a, b in turns)


def count_other_calls(rows: Sequence[dict[str, Any]], *, index: PromptIndex) -> None:
    """Set ``prompt_other_calls`` / ``prompt_other_numbers`` of rows with a campaign, in place:
    every other call of the campaign in the index (later ones and earlier batches included).

    One grouped query per campaign among ``rows`` (a row group of a batch), not one per row: a
    campaign of 100,000 calls is counted once per row group.
    """
    campaigns = sorted({r["campaign_id"] for r in rows if r.get("campaign_id")})
    if not campaigns:
        return
    totals: dict[str, tuple[int, int]] = {}
    per_number: dict[tuple[str, str | None], int] = {}
    for chunk in range(0, len(campaigns), 500):  # SQLite's limit on bound parameters
        ids = campaigns[chunk : chunk + 500]
        marks = ",".join("?" * len(ids))
        for campaign_id, calls, numbers in index.query(
            "SELECT campaign_id, COUNT(*), COUNT(DISTINCT caller_number) FROM sightings "
            f"WHERE campaign_id IN ({marks}) GROUP BY campaign_id",
            ids,
        ):
            totals[campaign_id] = (int(calls), int(numbers))
        for campaign_id, number, calls in index.query(
            "SELECT campaign_id, caller_number, COUNT(*) FROM sightings "
            f"WHERE campaign_id IN ({marks}) GROUP BY campaign_id, caller_number",
            ids,
        ):
            per_number[(campaign_id, number)] = int(calls)
    for row in rows:
        campaign_id = row.get("campaign_id")
        if not campaign_id:
            continue
        own = index.query(
            "SELECT caller_number FROM sightings WHERE campaign_id=? AND call_key=?",
            (campaign_id, row["audio_sha256"]),
        )
        calls, numbers = totals[campaign_id]
        if own:  # the call's own sighting, and its number when no other call of it came from it
            number = own[0][0]
            calls -= 1
            numbers -= number is not None and per_number[(campaign_id, number)] == 1
        row["prompt_other_calls"] = calls
        row["prompt_other_numbers"] = numbers
