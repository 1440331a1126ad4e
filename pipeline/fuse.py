"""Fusion of text, acoustic and structural cues into one probability.

The fusion is a logistic sum: every cue assigns its :class:`Evidence` a signed weight in logit
units (the trained heads, ``synthetic_voice`` and ``robot_script_text``, their calibrated
log-odds, clipped; the rule cues the hand-set weights of the tables in ``pipeline/acoustic.py``
and ``pipeline/text_cues.py``), and

    robot_probability = sigmoid(bias + weight_scale * sum(scale[cue, sign of weight] * weight))

With a fitted :class:`FusionModel` (``models/weights/fusion.json``, written by
``models/train_fusion.py``) the bias and one non-negative scale per cue and direction are fitted
and calibrated on data no head was fitted on: a rule's direction and shape stay as written; how
much it counts, towards robot and towards human separately, is learnt. Without one (tests, a
checkout without the file) every scale is 1 and the bias is ``FusionConfig.bias``: hand-set, not
calibrated. ``Provenance.fusion_method`` says which in every verdict, and each evidence weight
is its contribution as applied.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from pipeline.config import FusionConfig
from pipeline.types import (
    AcousticCues,
    AudioInfo,
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
    """A fitted fusion: the bias and one scale per cue (``models/train_fusion.py``)."""

    bias: float
    # (signed cue, scale >= 0), sorted: "<cue>:+" scales the cue's weights towards robot,
    # "<cue>:-" those towards human, so that the fit can trust one direction more than the
    # other ("reads like a script" is stronger evidence than "does not").
    scales: tuple[tuple[str, float], ...]
    default_scale: float  # cue directions the fit never saw (stereo-only cues) keep weight x this
    method: str  # one line for Provenance.fusion_method
    model_id: str = "fusion"
    sha256: str = ""

    def scale(self, name: str, weight: float) -> float:
        """The fitted scale of cue ``name`` when its hand-set weight is ``weight``."""
        return dict(self.scales).get(signed_cue(name, weight), self.default_scale)


def signed_cue(name: str, weight: float) -> str:
    """``"<name>:+"`` for a weight towards robot, ``"<name>:-"`` otherwise."""
    return f"{name}:{'+' if weight > 0 else '-'}"


def sigmoid(x: float) -> float:
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
        ``weight_scale``, the decision ``threshold`` and (without ``model``) the ``bias``.
    model : FusionModel, optional
        Fitted bias and per-cue scales; None sums the hand-set weights with ``config.bias``.

    Returns
    -------
    Verdict
        Evidence sorted by ``|weight|``, strongest first; weights as applied (scaled).
    """
    bias = config.bias if model is None else model.bias

    def applied(weight: float, name: str) -> float:
        scale = config.weight_scale * (1.0 if model is None else model.scale(name, weight))
        return round(weight * scale, 3) + 0.0

    evidence = tuple(
        dataclasses.replace(e, weight=applied(e.weight, e.name))
        for e in (*text.evidence, *cues.evidence)
    )
    evidence = tuple(sorted(evidence, key=lambda e: (-abs(e.weight), e.name)))
    probability = sigmoid(bias + sum(e.weight for e in evidence))
    label = Label.ROBOT if probability >= config.threshold else Label.HUMAN
    return Verdict(
        label=label,
        robot_probability=probability,
        threshold=config.threshold,
        sales_probability=text.sales_probability,
        topic=text.topic,
        evidence=evidence,
        transcript=transcript,
        other_party_transcript=other_transcript,
        audio=audio,
        provenance=provenance,
    )
