"""Fusion of text, acoustic and structural cues into one probability.

The fusion is a logistic sum: every cue assigns its :class:`Evidence` a signed weight in logit
units (the trained heads, ``synthetic_voice`` and ``robot_script_text``, their calibrated
log-odds, clipped; the rule cues the hand-set weights of the tables in ``pipeline/acoustic.py``
and ``pipeline/text_cues.py``), and

    robot_probability = sigmoid(bias + weight_scale * sum(scale[cue, sign of weight] * weight))

With a fitted :class:`FusionModel` (``models/weights/fusion.json``, written by
``models/training/train_fusion.py``) the bias and one non-negative scale per cue and direction are
fitted and calibrated on data no head was fitted on: a rule's direction and shape stay as written;
how much it counts, towards robot and towards human separately, is learnt. Without one (tests, a
checkout without the file) every scale is 1 and the bias is ``FusionConfig.bias``: hand-set, not
calibrated. ``Provenance.fusion_method`` says which in every verdict, and each evidence weight is
its contribution as applied.

Because the sum is additive, a verdict can be fused again with more evidence
(:func:`add_evidence`) and comes out as if :func:`fuse` had had it from the start: the batch
driver adds ``prompt_seen_before`` that way, after the workers made the verdicts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import overload

import numpy as np

from pipeline.config import DetectorConfig, FusionConfig
from pipeline.messages import render
from pipeline.types import (
    AcousticCues,
    AudioInfo,
    Evidence,
    Label,
    Provenance,
    TextScore,
    Transcript,
    Verdict,
)

FUSION_METHOD = (
    "logistic sum of cue weights: trained heads add their calibrated log-odds, other cues "
    "hand-set weights; the sum is not fitted, so the probability is not calibrated "
    "(pipeline/fuse.py)"
)


@dataclass(frozen=True, slots=True)
class FusionModel:
    """A fitted fusion: the bias and one scale per cue (``models/training/train_fusion.py``)."""

    bias: float
    # (signed cue, scale >= 0), sorted: "<cue>:+" scales the cue's weights towards robot,
    # "<cue>:-" those towards human, so that the fit can trust one direction more than the
    # other ("reads like a script" is stronger evidence than "does not").
    scales: tuple[tuple[str, float], ...]
    default_scale: float  # cue directions absent from the fit's data keep weight x this
    method: str  # one line for Provenance.fusion_method
    model_id: str = "fusion"
    sha256: str = ""
    # (signed cue, cap >= 0), sorted: the most that direction of the cue may move the logit,
    # after scaling; only the directions of CAPPED_MESSAGES (see there why).
    caps: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        for key, cap in self.caps:
            if key not in CAPPED_MESSAGES or not cap >= 0:
                raise ValueError(f"caps: {key!r} {cap} (cappable: {sorted(CAPPED_MESSAGES)})")

    def scale(self, name: str, weight: float) -> float:
        """The fitted scale of cue ``name`` when its hand-set weight is ``weight``.

        At least :data:`SCALE_FLOORS` for the cues listed there.
        """
        key = signed_cue(name, weight)
        return max(dict(self.scales).get(key, self.default_scale), SCALE_FLOORS.get(key, 0.0))

    def cap(self, name: str, weight: float) -> float | None:
        """The cap of cue ``name``'s contribution in the direction of ``weight``; None: no cap."""
        return dict(self.caps).get(signed_cue(name, weight))

    def contribution(self, name: str, weight: float) -> float:
        """What cue ``name`` with hand-set ``weight`` adds to the robot logit: scaled, capped."""
        scaled = self.scale(name, weight) * weight
        cap = self.cap(name, weight)
        return scaled if cap is None else max(-cap, min(cap, scaled))


# Cue directions the fit may not scale below this. A message replayed within the call is how
# dialers work ("press 2 to hear this message again"); the composed fit calls hold few replays
# (9 %, all robot and all otherwise obvious), so the fit gave it 0.00: no evidence either way,
# not evidence that replays are human. The hand-set weight (pipeline/acoustic.py) stands (issue 17).
SCALE_FLOORS: dict[str, float] = {"replayed_speech_s:+": 1.0}

# Cue directions a fitted fusion may cap, and the message of a capped cue. Many dialer robots
# play prompts recorded by a real person (真人录音, issue 13): a human voice rules out a TTS
# engine, not a robot, so it may not outvote the dialer's behaviour; the cap, how far it can
# move the verdict towards "person", is chosen on dev calls (models/training/fusion_fit.py).
CAPPED_MESSAGES: dict[str, str] = {"synthetic_voice:-": "synthetic_voice.human_capped"}


def signed_cue(name: str, weight: float) -> str:
    """``"<name>:+"`` for a weight towards robot, ``"<name>:-"`` otherwise."""
    return f"{name}:{'+' if weight > 0 else '-'}"


@overload
def sigmoid(x: float) -> float: ...
@overload
def sigmoid(x: np.ndarray) -> np.ndarray: ...
def sigmoid(x: float | np.ndarray) -> float | np.ndarray:
    """The logistic function, without overflow: a float for a float, float64 for an array.

    The one copy: fusion, rule cues, text and synthetic-voice heads and training all call it.
    """
    if isinstance(x, np.ndarray):
        return 0.5 * (1.0 + np.tanh(0.5 * x.astype(np.float64)))
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def fuse(
    *,
    text: TextScore,
    cues: AcousticCues,
    transcript: Transcript,
    other_transcript: Transcript | None,
    audio: AudioInfo,
    provenance: Provenance,
    config: FusionConfig,
    model: FusionModel | None = None,
) -> Verdict:
    """Combine the branches into a :class:`Verdict`.

    Parameters
    ----------
    text, cues : TextScore, AcousticCues
        The branches' conclusions; their evidence weights are robot-logit contributions.
    transcript, other_transcript : Transcript, Transcript or None
        The caller's and (stereo only) the callee's transcripts, carried into the verdict.
    audio, provenance : AudioInfo, Provenance
    config : FusionConfig
        ``weight_scale``, the decision ``threshold``, ``sales_threshold`` (whether a sales
        pitch was heard) and (without ``model``) the ``bias``.
    model : FusionModel, optional
        Fitted bias and per-cue scales; None sums the hand-set weights with ``config.bias``.

    Returns
    -------
    Verdict
        Evidence sorted by ``|weight|``, strongest first; weights as applied (scaled).
    """
    evidence = _sorted(
        _applied(e, config=config, model=model) for e in (*text.evidence, *cues.evidence)
    )
    probability = _probability(evidence, config=config, model=model)
    return Verdict(
        label=Label.ROBOT if probability >= config.threshold else Label.HUMAN,
        robot_probability=probability,
        threshold=config.threshold,
        sales_probability=text.sales_probability,
        topic=text.topic,
        evidence=evidence,
        transcript=transcript,
        other_party_transcript=other_transcript,
        audio=audio,
        provenance=provenance,
        sales_threshold=config.sales_threshold,
    )


def add_evidence(
    verdict: Verdict,
    extra: Iterable[Evidence],
    *,
    config: DetectorConfig,
    model: FusionModel | None,
    replace: Collection[str] = (),
) -> Verdict:
    """Fuse ``verdict`` again with more evidence, as :func:`fuse` would have with it from the start.

    Parameters
    ----------
    verdict : Verdict
        Made by :func:`fuse` with ``config`` and ``model`` (its provenance must say so).
    extra : iterable of Evidence
        Evidence with hand-set weights, as a cue produces it; scaled here like in :func:`fuse`
        (a cue the fitted ``model`` never saw gets its ``default_scale``).
    config, model : DetectorConfig, FusionModel or None
        What made the verdict (``Provenance.config_hash``, the ``fusion`` model and
        ``fusion_method`` are checked).
    replace : collection of str
        Evidence names to drop from the verdict first. Names in ``extra`` are always replaced,
        so that adding the same evidence twice counts it once.

    Returns
    -------
    Verdict
        New label, probability and evidence; transcript, audio and provenance as they were (the
        provenance already names every model and the config the result depends on).

    Raises
    ------
    ValueError
        The verdict was fused with another config or fusion: its weights cannot be summed again.
    """
    _check_fused_by(verdict, config=config, model=model)
    extra = tuple(extra)
    dropped = {*replace, *(e.name for e in extra)}
    fusion = config.fusion
    evidence = _sorted(
        (
            *(e for e in verdict.evidence if e.name not in dropped),
            *(_applied(e, config=fusion, model=model) for e in extra),
        )
    )
    probability = _probability(evidence, config=fusion, model=model)
    return dataclasses.replace(
        verdict,
        label=Label.ROBOT if probability >= fusion.threshold else Label.HUMAN,
        robot_probability=probability,
        evidence=evidence,
    )


def _applied(evidence: Evidence, *, config: FusionConfig, model: FusionModel | None) -> Evidence:
    """``evidence`` with its hand-set weight scaled (and capped) as the fusion applies it
    (3 decimals); a capped cue's sentences say why it counts less."""
    name, weight = evidence.name, evidence.weight
    if model is None:
        return dataclasses.replace(evidence, weight=round(weight * config.weight_scale, 3) + 0.0)
    applied = model.contribution(name, weight)
    capped = evidence.code and applied != model.scale(name, weight) * weight
    out = dataclasses.replace(evidence, weight=round(applied * config.weight_scale, 3) + 0.0)
    if not capped:
        return out
    code = CAPPED_MESSAGES[signed_cue(name, weight)]
    params = dict(evidence.params)
    return dataclasses.replace(
        out, code=code, detail=render(code, params, "en"), detail_zh=render(code, params, "zh")
    )


def _sorted(evidence: Iterable[Evidence]) -> tuple[Evidence, ...]:
    return tuple(sorted(evidence, key=lambda e: (-abs(e.weight), e.name)))


def _probability(
    evidence: tuple[Evidence, ...], *, config: FusionConfig, model: FusionModel | None
) -> float:
    bias = config.bias if model is None else model.bias
    return sigmoid(bias + sum(e.weight for e in evidence))


def _check_fused_by(verdict: Verdict, *, config: DetectorConfig, model: FusionModel | None) -> None:
    prov = verdict.provenance
    fusions = [(m.model_id, m.sha256) for m in prov.models if m.role == "fusion"]
    if model is None:
        expected, method = [], FUSION_METHOD
    else:
        expected, method = [(model.model_id, model.sha256)], model.method
    if prov.config_hash != config.config_hash():
        raise ValueError(
            f"{verdict.audio.name}: verdict made with config {prov.config_hash}, "
            f"not {config.config_hash()}"
        )
    if fusions != expected or prov.fusion_method != method:
        made = fusions[0] if fusions else "the hand-set sum"
        want = expected[0] if expected else "the hand-set sum"
        raise ValueError(f"{verdict.audio.name}: verdict fused by {made}, not by {want}")
