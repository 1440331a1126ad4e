"""Calls through the whole detector, for the fusion's fit and its reports.

Two sets: the simulated two-party calls (below), and the test-split call mixtures of
``mixed.jsonl`` (:func:`end_to_end`). One module of more than 500 lines because both sets run
through the same caches and the same split of head-free and head evidence; apart, the mixtures
would import every cache class from here anyway.

The simulated calls (``datasets/manifests/calls/calls.jsonl``, issue 13) are the only recordings
with both parties: their stereo copies carry the turn-taking cues (reply latency, barge-in, the
callee's reactions: ``pipeline/behaviour.py`` and the stereo cues of ``pipeline/acoustic.py``)
and their mono copies the same cues through the diarizer. Each chosen call is cropped to its
first :data:`CROP_S` seconds, written to FLAC in memory and analysed by
``Detector.detect`` exactly as ``robocall analyze`` runs it (channel choice, real ASR, every
cue), with the fusion switched off so that the evidence carries the hand-set weights the fit
scales.

ASR and the Whisper encoder are the cost, and neither depends on a trained head, so both are
cached on disk per input (:class:`CachedTranscriber`, :class:`CachedFrameEncoder`, under
``$ROBOCALL_CACHE_DIR/synth_features/call_asr``): after new heads land, a rerun only rescores.
A call is chosen by a seeded hash of its group within each (split, language, robot kind) cell,
and both layouts of a chosen call are run, so stereo and mono are compared on the same calls.

Carrier mode (``call_examples(..., prompt_index=...)``): a single upload has no prompt index, but
a carrier checking a run of calls has one (``robocall batch``, ``service/campaigns``). Each call
then also carries the ``prompt_seen_before`` evidence of an index over the *other* chosen calls
of its split, language and layout, this call left out. The index is the service's own code,
passed in (``service.campaigns.heard_before.leave_one_out``): training code does not import the
service (``tests/test_layout.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import pickle
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import soundfile as sf

from models.training import metrics as M
from models.training.corpus import (
    CorpusRow,
    hash_unit,
    read_clip,
    read_manifests,
    resolve_path,
    seeded_rng,
)
from models.training.fusion_fit import (
    PROMPT_CUE,
    TEXT_CUES,
    Example,
    fusion_logit,
    grouped_scores,
    handset_logit,
    scores_table,
    source_digest,
)
from models.training.fusion_fit import SALT as FUSION_SALT
from models.training.leakage import simulated_calls, tied_ids
from models.training.synth_data import features_cache_dir
from pipeline.fuse import FusionModel, sigmoid
from pipeline.types import (
    ANALYSIS_RATE_HZ,
    Audio,
    Evidence,
    ModelInfo,
    SyntheticVoiceScorer,
    TextScore,
    Transcript,
    Turns,
)

if TYPE_CHECKING:
    from models.asr import SpeechFrames
    from models.synth_head import FrameEncoder, WindowChoice
    from pipeline.detector import Detector
    from pipeline.types import Transcriber

log = logging.getLogger(__name__)


class PromptLookup(Protocol):
    """Each call's ``prompt_seen_before`` evidence from an index over the other calls given
    (None: no other call carried its prompt); (decoded call, caller's transcript) in, with each
    mono call's caller turns (``Verdict.caller_turns``), one per call out."""

    def __call__(
        self,
        calls: Sequence[tuple[Audio, str]],
        *,
        caller_turns: Sequence[Turns | None] | None = None,
    ) -> Sequence[Evidence | None]: ...


CROP_S = 30.0  # seconds of each call analysed (from its start): ASR is the cost
PER_CELL = 6  # calls per (split, language, robot kind); both layouts of each are run
SALT = "fusion-calls-v1"
KINDS = ("tts_robot", "recorded_robot", "human_agent")


def _cache_root() -> Path:
    return features_cache_dir() / "call_asr"


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:32]


class CachedTranscriber:
    """A :class:`Transcriber` that keeps each transcript on disk, keyed by samples and model.

    The key is the samples' bytes, the model's id and sha256, the ASR config and the code that
    assembles a transcript (:data:`ASR_CODE`), so a changed model, setting or decoding step
    never reads a stale transcript. The detector transcribes the decoded
    audio; the head runs its own encoder pass (cached by :class:`CachedFrameEncoder`).
    """

    def __init__(self, inner: Transcriber, *, cache_dir: Path) -> None:
        self.inner = inner
        self.model_info: ModelInfo = inner.model_info
        self._dir = cache_dir
        self._config = repr(getattr(inner, "cfg", "")) + source_digest(SALT, ASR_CODE, [])

    def transcribe(self, samples: np.ndarray) -> Transcript:
        x = np.ascontiguousarray(samples, dtype=np.float32)
        info = self.model_info
        path = (
            self._dir
            / "asr"
            / f"{_digest(x.tobytes(), info.model_id, info.sha256, self._config)}.pkl"
        )
        if path.is_file():
            cached: Transcript = pickle.loads(path.read_bytes())
            return cached
        transcript = self.inner.transcribe(x)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(transcript))
        return transcript


class CachedFrameEncoder:
    """A synthetic-voice head's :class:`FrameEncoder` whose speech frames are kept on disk."""

    def __init__(self, inner: FrameEncoder, *, cache_dir: Path) -> None:
        self.inner = inner
        self._dir = cache_dir

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def frames(self, samples: np.ndarray) -> np.ndarray:
        return self.inner.frames(samples)

    def speech_frames(
        self, samples: np.ndarray, *, choice: WindowChoice | None = None
    ) -> SpeechFrames | None:
        x = np.ascontiguousarray(samples, dtype=np.float32)
        whole = self._dir / "frames" / f"{_digest(x.tobytes(), self.model_id)}.npz"
        if whole.is_file():
            found = _read_frames(whole)
            # a choice that keeps all the speech (it fits one pass) encodes the same frames
            if choice is None or found is None or choice.spans(found.chunks) is None:
                return found
        path = whole
        if choice is not None:
            path = whole.with_name(f"{_digest(x.tobytes(), self.model_id, repr(choice))}.npz")
            if path.is_file():
                return _read_frames(path)
        frames = self.inner.speech_frames(x, choice=choice)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            if frames is None:
                np.savez(f, frames=np.zeros((0, 0), np.float32), chunks=np.zeros((0, 2), np.int64))
            else:
                np.savez(f, frames=frames.frames, chunks=np.asarray(frames.chunks, dtype=np.int64))
        return frames


def _read_frames(path: Path) -> SpeechFrames | None:
    from models.asr import SpeechFrames

    with np.load(path) as z:
        if not z["frames"].size and not z["chunks"].size:
            return None
        chunks = tuple((int(a), int(b)) for a, b in z["chunks"])
        return SpeechFrames(frames=z["frames"], chunks=chunks)


def with_cached_frames(
    scorer: SyntheticVoiceScorer, *, cache_dir: Path | None = None
) -> SyntheticVoiceScorer:
    """The same synthetic-voice scorer, its encoder passes kept on disk (the head runs anew)."""
    from models.synth_head import SynthVoiceScorer

    if not isinstance(scorer, SynthVoiceScorer) or scorer.encoder is None:
        return scorer
    if isinstance(scorer.encoder, CachedFrameEncoder):
        return scorer
    return SynthVoiceScorer(
        scorer.head,
        encoder=CachedFrameEncoder(scorer.encoder, cache_dir=cache_dir or _cache_root()),
        model_info=scorer.model_info,
        embedder=scorer.embedder,
        window_rule=scorer.window_rule,
    )


def analyze_detector() -> Detector:
    """The detector as ``robocall analyze`` builds it (``service/detector.py``): the models of
    the default config, and the two-party diarizer for mono recordings."""
    from models.diarize import TwoPartyDiarizer
    from models.loading import load_detector
    from pipeline.config import DetectorConfig

    detector = load_detector(DetectorConfig())
    if detector.diarizer is None:
        detector = dataclasses.replace(detector, diarizer=TwoPartyDiarizer())
    return detector


def caching_detector(detector: Detector, *, cache_dir: Path | None = None) -> Detector:
    """The same detector without fusion model, its ASR and encoder passes cached on disk."""
    root = cache_dir or _cache_root()
    scorer = detector.synth_scorer
    if scorer is not None:
        scorer = with_cached_frames(scorer, cache_dir=root)
    return dataclasses.replace(
        detector,
        transcriber=CachedTranscriber(detector.transcriber, cache_dir=root),
        synth_scorer=scorer,
        fusion=None,
    )


def layout(row: CorpusRow) -> str:
    return dict(row.extra).get("layout", "mono")


def robot_kind(row: CorpusRow) -> str:
    return row.kind.removeprefix("call_")


def select_calls(
    rows: Sequence[CorpusRow], *, split: str, per_cell: int | None = PER_CELL
) -> list[CorpusRow]:
    """Both layouts of ``per_cell`` calls (None: all) per (language, robot kind) of ``split``, by
    seeded hash, in the order of their rank within their cell.

    ``rows`` are the simulated calls. The calls were split apart from the clip corpus, so a dev
    call may reuse a voice or an utterance of a test clip or of a test call: such calls are never
    chosen for a split other than test (the fusion fits on the dev calls).
    """
    tied: set[str] = set()
    if split != "test":
        every = [*read_manifests(), *rows]
        candidates = [r for r in rows if r.split == split]
        leaking = tied_ids(candidates, every)
        tied = {r.group_id for r in candidates if r.id in leaking}
    groups: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        if r.split == split and r.group_id not in tied:
            groups.setdefault((r.language, robot_kind(r)), set()).add(r.group_id)
    rank = {
        g: i
        for members in groups.values()
        for i, g in enumerate(sorted(members, key=lambda g: hash_unit(g, salt=SALT))[:per_cell])
    }
    # Rank first: the first calls of every cell come first, so a run cut short has cached
    # whole ranks (a smaller ``per_cell``).
    return sorted(
        (r for r in rows if r.split == split and r.group_id in rank),
        key=lambda r: (rank[r.group_id], r.id),
    )


def callers_heard_in_training(rows: Sequence[CorpusRow]) -> set[str]:
    """Ids of the calls whose caller speaks a clip (voice or utterance) the synthetic-voice head
    was trained on: its ``synthetic_voice`` cue is then not a held-out figure. None since the
    calls follow the corpus splits (``datasets/prepare_calls.py``); counted, not assumed."""
    from models.training.leakage import audio_keys
    from models.training.synth_config import TrainConfig
    from models.training.synth_data import select_rows, train_ids

    cfg = TrainConfig()
    clips = select_rows(cfg)
    chosen = train_ids(clips, cfg)
    every = read_manifests()
    by_id = {r.id: r for r in every}
    trained = {k for r in every if r.id in chosen for k in audio_keys(r, by_id, engines=False)}
    heard = set()
    for row in rows:
        segments = json.loads(dict(row.extra).get("segments", "[]"))
        parts = {s["part"] for s in segments if s.get("role") == "caller"}
        keys = {k for p in parts if p in by_id for k in audio_keys(by_id[p], by_id, engines=False)}
        if keys & trained:
            heard.add(row.id)
    return heard


def crop_flac(row: CorpusRow, *, crop_s: float = CROP_S) -> bytes:
    """The first ``crop_s`` seconds of a call, every channel, as FLAC bytes."""
    x, sr = sf.read(resolve_path(row), dtype="float32", always_2d=True)
    buf = io.BytesIO()
    sf.write(buf, x[: int(crop_s * sr)], sr, format="FLAC")
    return buf.getvalue()


class NoTextHeads:
    """A text classifier that concludes nothing: the detector run of the cues no head decides.
    It keeps the transcript it was given, the words the detector judges (a queue announcement's
    set aside: ``pipeline/queue.py``)."""

    model_info = ModelInfo("text", "none", "")

    def __init__(self) -> None:
        self.judged: Transcript | None = None

    def score(self, transcript: Transcript, *, other_party: Transcript | None = None) -> TextScore:
        self.judged = transcript
        return TextScore(0.0, "none", (), ())


# Modules whose code decides a transcript (the decoding, the re-decodes and their times, the guard).
ASR_CODE = ("models/asr.py", "models/transcript_guard.py")


# Modules whose code decides the evidence no head decides (acoustic, behaviour, diarisation,
# decoding, channel, what is set aside as played while the caller waits, and the detector that
# composes them, e.g. a mono call's caller-leg cues); with the ASR model they key
# :func:`audio_evidence`'s cache.
BASE_CODE = (
    "models/diarize.py",
    "pipeline/acoustic.py",
    "pipeline/audio.py",
    "pipeline/behaviour.py",
    "pipeline/detector.py",
    "pipeline/lexicon.py",
    "pipeline/queue.py",
    "pipeline/telephone.py",
    "pipeline/tones.py",
    "pipeline/vad.py",
)


# Files whose content decides the heads' evidence, with the heads' weights (model_info sha256).
HEAD_CODE = (
    "models/synth_head.py",
    "models/text_clf.py",
    "pipeline/detector.py",
    "pipeline/lexicon.py",
    "pipeline/text_cues.py",
)


def _head_digest(detector: Detector) -> str:
    synth = detector.synth_scorer
    shas = [detector.text_classifier.model_info.sha256]
    return source_digest(SALT, HEAD_CODE, shas + ([synth.model_info.sha256] if synth else []))


def _base_digest(detector: Detector) -> str:
    return source_digest(SALT, BASE_CODE, [detector.transcriber.model_info.sha256])


def audio_evidence(
    detector: Detector, audio: Audio, *, key: str, cache_dir: Path | None = None
) -> dict[str, Any]:
    """The evidence of one recording as the whole detector gives it, hand-set weights.

    Split so that new heads only rescore: the detector runs once without its heads (its ASR
    and encoder passes cached, :func:`caching_detector`) and that evidence, with the
    transcripts, is kept on disk under ``key`` and the code that decides it
    (:data:`BASE_CODE`); the text classifier and the synthetic-voice head then score the kept
    transcripts and the caller's audio anew, as ``Detector.detect_audio`` calls them (their
    result kept too, keyed by the heads' weights and :data:`HEAD_CODE`): the text heads the
    words the detector judged, the voice head the caller's audio with what the detector set
    aside silenced (``Verdict.set_aside``), as it does.
    Returns ``{"cues": {name: weight}, "sales_probability", "caller_channel", "caller_text"}``
    (``caller_text``: the caller's transcript) or ``{"error": code}``.
    """
    from pipeline.detector import synthetic_voice_evidence
    from pipeline.errors import RobocallError
    from pipeline.queue import muted

    cached = caching_detector(detector, cache_dir=cache_dir)
    root = (cache_dir or _cache_root()) / "base" / _base_digest(detector)
    path = root / f"{_digest(key)}.pkl"
    if path.is_file():
        base: dict[str, Any] = pickle.loads(path.read_bytes())
    else:
        no_heads = NoTextHeads()
        headless = dataclasses.replace(cached, text_classifier=no_heads, synth_scorer=None)
        try:
            verdict = headless.detect_audio(audio)
            base = {
                "cues": {e.name: e.weight for e in verdict.evidence},
                "transcript": verdict.transcript,
                "judged": no_heads.judged,
                "set_aside": verdict.set_aside,
                "other": verdict.other_party_transcript,
            }
        except RobocallError as exc:
            base = {"error": exc.code}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(base))
    if "error" in base:
        return {"error": base["error"]}
    caller_text = base["transcript"].text
    scored = root / _head_digest(detector) / f"{_digest(key)}.json"
    if scored.is_file():
        kept: dict[str, Any] = json.loads(scored.read_text())
        return {**kept, "caller_text": caller_text}
    text = cached.text_classifier.score(base["judged"], other_party=base["other"])
    cues = {**base["cues"], **{e.name: e.weight for e in text.evidence}}
    if cached.synth_scorer is not None:
        synth = cached.synth_scorer.score(muted(audio.caller(), base["set_aside"]))
        if synth is not None:
            cues["synthetic_voice"] = synthetic_voice_evidence(synth).weight
    out = {
        "cues": cues,
        "sales_probability": text.sales_probability,
        "caller_channel": audio.info.caller_channel,
    }
    scored.parent.mkdir(parents=True, exist_ok=True)
    scored.write_text(json.dumps(out, sort_keys=True))
    return {**out, "caller_text": caller_text}


def decode_call(detector: Detector, row: CorpusRow, *, crop_s: float = CROP_S) -> Audio:
    """One simulated call, cropped, decoded as ``robocall analyze`` decodes a file (its channel
    choice included); raises the decoder's ``RobocallError``."""
    from pipeline.audio import load_audio

    cfg = detector.config
    return load_audio(
        crop_flac(row, crop_s=crop_s),
        limits=cfg.audio,
        name=row.id,
        caller_channel=cfg.caller_channel,
    )


def call_evidence(
    detector: Detector, row: CorpusRow, *, crop_s: float = CROP_S, cache_dir: Path | None = None
) -> dict[str, Any]:
    """:func:`audio_evidence` of one simulated call (:func:`decode_call`)."""
    from pipeline.errors import RobocallError

    try:
        audio = decode_call(detector, row, crop_s=crop_s)
    except RobocallError as exc:
        return {"error": exc.code}
    key = f"call|{row.id}|{crop_s:g}|{audio.info.sha256}"
    return audio_evidence(detector, audio, key=key, cache_dir=cache_dir)


def call_examples(
    detector: Detector,
    *,
    split: str,
    per_cell: int | None = PER_CELL,
    crop_s: float = CROP_S,
    progress: bool = False,
    prompt_index: PromptLookup | None = None,
) -> tuple[list[Example], int]:
    """Examples of the chosen calls of ``split`` (``kind`` = robot kind), and how many failed.

    ``prompt_index`` (carrier mode, see the module doc): each example also carries the
    ``prompt_seen_before`` weight its call gets from an index over the other chosen calls of
    the same language and layout (``service.campaigns.heard_before.leave_one_out``); None (a
    single upload): no such cue.
    """
    rows = select_calls(simulated_calls(), split=split, per_cell=per_cell)
    out: list[Example] = []
    texts: list[str] = []
    failed = 0
    started = time.monotonic()
    for i, row in enumerate(rows):
        got = call_evidence(detector, row, crop_s=crop_s)
        if "error" in got:
            log.warning("simulated call %s: %s", row.id, got["error"])
            failed += 1
            continue
        out.append(
            Example(
                audio_id=row.id,
                text_id="",
                y=int(row.label == "robot"),
                language=row.language,
                kind=robot_kind(row),
                text_source="simulated call",
                cues=tuple(sorted(got["cues"].items())),
                layout=layout(row),
                group=row.speaker,
                sales_probability=float(got["sales_probability"]),
            )
        )
        texts.append(str(got["caller_text"]))
        if progress and (i + 1) % 10 == 0:
            log.warning(
                "simulated %s calls: %d/%d, %.0f s",
                split,
                i + 1,
                len(rows),
                time.monotonic() - started,
            )
    if prompt_index is not None:
        out = with_prompt_index(detector, out, texts, prompt_index, crop_s=crop_s)
    return out, failed


def with_prompt_index(
    detector: Detector,
    examples: Sequence[Example],
    texts: Sequence[str],
    prompt_index: PromptLookup,
    *,
    crop_s: float = CROP_S,
) -> list[Example]:
    """The examples with the ``prompt_seen_before`` weight of each call (when it has one) from
    ``prompt_index`` over the other examples of its language and layout (the calls decoded
    again, as the detector decoded them; a mono call's caller turns split again, as the
    detector splits them, ``Detector.caller_turns``)."""
    by_id = {r.id: r for r in simulated_calls()}
    groups: dict[tuple[str, str], list[int]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault((ex.language, ex.layout), []).append(i)
    out = list(examples)
    for members in groups.values():
        calls = [
            (decode_call(detector, by_id[out[i].audio_id], crop_s=crop_s), texts[i])
            for i in members
        ]
        turns = [detector.caller_turns(audio) for audio, _ in calls]
        for i, evidence in zip(members, prompt_index(calls, caller_turns=turns), strict=True):
            if evidence is not None:
                cues = dict(out[i].cues) | {evidence.name: evidence.weight}
                out[i] = dataclasses.replace(out[i], cues=tuple(sorted(cues.items())))
    return out


def index_hits(examples: Sequence[Example]) -> dict[str, dict[str, Any]]:
    """Calls the carrier's index matched (their example carries :data:`PROMPT_CUE`), per caller
    kind and layout: on robots what it should find, on agents its false alarms; the share with
    a 95 % bootstrap interval over caller voices (a campaign's voice, for the robots)."""
    cells: dict[str, list[Example]] = {}
    for ex in examples:
        cells.setdefault(f"{ex.kind} | {ex.layout}", []).append(ex)
    out: dict[str, dict[str, Any]] = {}
    for cell, members in sorted(cells.items()):
        flags = np.array([dict(ex.cues).get(PROMPT_CUE, 0.0) > 0 for ex in members])
        out[cell] = {
            "calls": len(members),
            "matched": int(flags.sum()),
            "share": float(flags.mean()),
            "share_ci": M.rate_ci(flags, [ex.group for ex in members]),
            "voices": len({ex.group for ex in members}),
        }
    return out


def fit_cues_only(ex: Example) -> Example:
    """A call's example without its text cues and its synthetic-voice cue, for the fit.

    Text: the simulated robots speak sales lines and their human agents read books, so fitted on
    these calls the text cues would learn "not a sales script = person", which is the sales
    question, not the robot one (issue 13). Voice: a dev call's voices are dev clips, some of
    them perhaps of the half the synthetic-voice head chose its settings on (``corpus.dev_halves``),
    and a recorded-prompt robot's voice is a person's by construction: fitted here, its scales
    would learn the simulator's choice of sources. Both are fitted on the composed calls
    only; the simulated calls fit the acoustic and behaviour cues, and choose how far a human
    voice may pull towards "person" (``fusion_fit.choose_cap``, scored with every cue).
    """
    drop = {*TEXT_CUES, "synthetic_voice"}
    return dataclasses.replace(ex, cues=tuple((n, w) for n, w in ex.cues if n not in drop))


def verdict_row(
    y: np.ndarray, logit: np.ndarray, groups: list[str], threshold: float
) -> dict[str, Any]:
    """EER and AUC with 95 % bootstrap intervals by voice, and called-robot rates: at the shipped
    ``threshold``, and the robots' at the strictest threshold that calls at most 5 % of the
    people robot (an operating point read off these rows, not a shipped setting)."""
    both = M.has_both_classes(y)
    ci = M.bootstrap_ci(y, logit, groups=groups) if both else {}
    called = sigmoid(logit) >= threshold
    return {
        "n_robot": int(y.sum()),
        "n_human": int((1 - y).sum()),
        "eer": M.eer(y, logit)[0] if both else float("nan"),
        "eer_ci": ci.get("eer", (float("nan"),) * 2),
        "auc": M.roc_auc(y, logit) if both else float("nan"),
        "auc_ci": ci.get("auc", (float("nan"),) * 2),
        "robots_called": float(called[y == 1].mean()) if y.any() else float("nan"),
        "people_called": float(called[y == 0].mean()) if (1 - y).any() else float("nan"),
        "robots_called_at_5pct": _recall_at(y, logit, 0.05) if both else float("nan"),
    }


def _recall_at(y: np.ndarray, logit: np.ndarray, max_fpr: float) -> float:
    """Share of robots scored above every score that would call more than ``max_fpr`` of people."""
    people = np.sort(logit[y == 0])[::-1]
    allowed = int(np.floor(max_fpr * people.size))  # people who may score above the cut
    cut = people[allowed] if allowed < people.size else -np.inf
    return float((logit[y == 1] > cut).mean())


def call_tables(
    examples: Sequence[Example], logit: np.ndarray, *, threshold: float, sales_threshold: float
) -> dict[str, Any]:
    """The fused verdict on simulated test calls: each robot kind against the human agents,
    by layout and by language, and the four-way confusion (robot/person x sales/not)."""
    y = np.array([ex.y for ex in examples], dtype=np.int64)
    kind = np.array([ex.kind for ex in examples])
    lay = np.array([ex.layout for ex in examples])
    lang = np.array([ex.language for ex in examples])
    groups = np.array([ex.group for ex in examples])
    pairs: dict[str, dict[str, Any]] = {}
    for robots in ("recorded_robot", "tts_robot", "any robot"):
        is_robot = kind != "human_agent" if robots == "any robot" else kind == robots
        for layout_name in ("stereo", "mono", "both layouts"):
            for language in ("en", "zh", "both languages"):
                keep = (
                    (is_robot | (kind == "human_agent"))
                    & ((lay == layout_name) if layout_name != "both layouts" else True)
                    & ((lang == language) if language != "both languages" else True)
                )
                idx = np.flatnonzero(keep)
                if idx.size:
                    pairs[f"{robots} | {layout_name} | {language}"] = verdict_row(
                        y[idx], logit[idx], groups[idx].tolist(), threshold
                    )
    robot = sigmoid(logit) >= threshold
    sales = np.array([ex.sales_probability >= sales_threshold for ex in examples])
    confusion: dict[str, dict[str, int]] = {}
    for k in KINDS:
        for layout_name in ("stereo", "mono"):
            m = (kind == k) & (lay == layout_name)
            confusion[f"{k} | {layout_name}"] = {
                "robot, sales": int((m & robot & sales).sum()),
                "robot, not sales": int((m & robot & ~sales).sum()),
                "person, sales": int((m & ~robot & sales).sum()),
                "person, not sales": int((m & ~robot & ~sales).sum()),
            }
    return {"pairs": pairs, "confusion": confusion, "threshold": threshold,
            "sales_threshold": sales_threshold, "n_calls": len(examples)}  # fmt: skip


def cue_contributions(
    model: FusionModel,
    examples: Sequence[Example],
    *,
    by: Callable[[Example], str] = lambda ex: f"{ex.kind} | {ex.layout}",
) -> dict[str, Any]:
    """Mean contribution of each cue to the robot logit per cell (``by``: caller kind and
    layout): why the fused score ranks the calls as it does. Cues that add nothing anywhere are
    left out. ``"turn_taking_cap"``: per cell the mean amount the turn-taking cap took off
    (<= 0), so that bias + the cues + it is the cell's mean logit."""
    cells: dict[str, list[Example]] = {}
    for ex in examples:
        cells.setdefault(by(ex), []).append(ex)
    every = sorted({n for ex in examples for n, _ in ex.cues})

    def contribution(name: str, ex: Example) -> float:
        return model.contribution(name, dict(ex.cues).get(name, 0.0))

    means = {
        cell: {name: float(np.mean([contribution(name, ex) for ex in members])) for name in every}
        for cell, members in sorted(cells.items())
    }
    total = {cell: float(np.mean(fusion_logit(model, members))) for cell, members in cells.items()}
    names = sorted({n for m in means.values() for n, v in m.items() if abs(v) >= 0.005})
    return {
        "cells": {cell: len(members) for cell, members in sorted(cells.items())},
        "bias": model.bias,
        "cues": {n: {cell: means[cell][n] for cell in means} for n in names},
        "turn_taking_cap": {
            cell: total[cell] - model.bias - sum(means[cell].values()) for cell in means
        },
        "total": total,
    }


def cue_presence(examples: Sequence[Example]) -> dict[str, Any]:
    """Which cues each kind of call shows: per (caller kind, layout, language), the share of
    calls where a cue has a non-zero hand-set weight and its mean weight there. The fit can only
    learn a cue where it is non-zero, so this says what the fusion could learn from each cell
    (issue 13's diagnosis)."""
    cells: dict[str, list[Example]] = {}
    for ex in examples:
        cells.setdefault(f"{ex.kind} | {ex.layout} | {ex.language}", []).append(ex)
    names = sorted({n for ex in examples for n, w in ex.cues if w != 0.0})
    out: dict[str, Any] = {"cells": {c: len(m) for c, m in sorted(cells.items())}, "cues": {}}
    for name in names:
        row = {}
        for cell, members in sorted(cells.items()):
            weights = [w for ex in members for n, w in ex.cues if n == name and w != 0.0]
            row[cell] = {
                "present": len(weights) / len(members),
                "mean_weight": float(np.mean(weights)) if weights else 0.0,
            }
        out["cues"][name] = row
    return out


# ---------------------------------------------------------------------------------------------
# End to end: real calls through the whole detector


# Prompt sources of the test mixtures whose robots read non-sales text.
NON_SALES_SOURCES = ("zh_", "umelgan")


def end_to_end(
    model: FusionModel,
    detector: Detector,
    *,
    limit: int,
    others: dict[str, FusionModel] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Test-split mixed calls through the channel and the real detector (ASR included).

    Every fusion (``model``, the hand-set sum, and ``others`` by name: variants refitted on the
    same data) reads the same evidence: the detector runs without a fusion model, so its
    evidence weights are the hand-set ones. The ASR and encoder passes are cached per call
    (``fusion_calls.caching_detector``), so new heads only rescore. Calls are grouped by the
    source of their prompts, because the test robots are of three sorts: sales lines of our
    English TTS engines, demo sentences of Mandarin TTS systems (not sales), and vocoder copies
    of read speech.
    """
    from pipeline.telephone import telephone_channel
    from pipeline.types import Audio, AudioInfo

    rows = [r for r in read_manifests(["mixed"]) if r.split == "test"]
    rows = sorted(rows, key=lambda r: hash_unit(r.id, salt=FUSION_SALT))[:limit]
    examples: list[Example] = []
    started = time.monotonic()
    for i, row in enumerate(rows):
        rng = seeded_rng(FUSION_SALT, "channel", row.id)
        clip = read_clip(resolve_path(row))
        x = telephone_channel(clip, sample_rate_hz=ANALYSIS_RATE_HZ, rng=rng)
        info = AudioInfo(row.id, "", 0, "flac", "flac", ANALYSIS_RATE_HZ, 1, x.size / 16_000)
        audio = Audio(info, x[None, :].astype(np.float32))
        key = f"mixed|{row.id}|{hashlib.sha256(audio.samples.tobytes()).hexdigest()}"
        got = audio_evidence(detector, audio, key=key)
        if "error" in got:
            log.warning("end to end: %s: %s", row.id, got["error"])
            continue
        cues = got["cues"]
        source = row.parts[0].split("/")[0] if row.parts else row.source
        examples.append(
            Example(
                row.id,
                "",
                int(row.label == "robot"),
                row.language,
                row.kind,
                f"{row.language} {row.label}: {source}",
                tuple(sorted(cues.items())),
                group=row.speaker,
            )
        )
        if progress and (i + 1) % 10 == 0:
            log.warning(
                "end to end: %d/%d calls, %.0f s", i + 1, len(rows), time.monotonic() - started
            )
    y = np.array([ex.y for ex in examples], dtype=np.float64)
    fitted = fusion_logit(model, examples)
    # Robots whose prompts are not sales lines: Mandarin TTS demo sentences, vocoder copies of
    # read speech (issue 13's "TTS robots reading non-sales text"), against every person.
    idx = [
        i
        for i, ex in enumerate(examples)
        if not ex.y or ex.text_source.split(": ", 1)[1].startswith(NON_SALES_SOURCES)
    ]
    non_sales = verdict_row(
        y[idx].astype(np.int64),
        fitted[idx],
        [examples[i].group for i in idx],
        model.threshold,
    )
    return {
        "non_sales": non_sales,
        # why: each cue's mean contribution, robots and people of those mixtures by language
        "non_sales_contributions": cue_contributions(
            model,
            [examples[i] for i in idx],
            by=lambda ex: f"{'robot' if ex.y else 'person'} | {ex.language}",
        ),
        "all": {
            "fitted": scores_table(y, fitted),
            "hand-set sum": scores_table(y, handset_logit(examples)),
            **{
                name: scores_table(y, fusion_logit(m, examples))
                for name, m in (others or {}).items()
            },
        },
        "source": grouped_scores(examples, fitted, "text_source"),
        "kind": grouped_scores(examples, fitted, "kind"),
        "examples": examples,  # for the operating-point rows (operating_point.operating_rows)
        "skipped": len(rows) - len(examples),
        "seconds": time.monotonic() - started,
    }
