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

Two caps keep one family of cues from deciding alone (issue 13): a human voice's pull towards
"person" (``FusionModel.caps``: robots play prompts recorded by people), and the summed pull of
the turn-taking cues towards "robot" (``FusionModel.turn_taking_cap``, :data:`TURN_TAKING_CUES`:
a live agent who talks in a regular rhythm is not a robot on that alone). A capped cue's weight
is its contribution as applied, so the reasons still add up to the probability.

The operating point (issue 13): a fitted fusion carries the robot ``threshold`` and the lower
edge of an "uncertain" band, both chosen on dev so that few people are called robots and few
robots people (``models/training/fusion_fit.py``, ``operating_point``); the verdict carries both
(``Verdict.threshold``, ``Verdict.person_threshold``), so every surface shows what decided it.

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
from pipeline.messages import TURN_TAKING_CAP_PARAM, render
from pipeline.types import (
    AcousticCues,
    AudioInfo,
    Evidence,
    Label,
    Provenance,
    TextScore,
    Transcript,
    Turns,
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
    # The most the cues of TURN_TAKING_CUES together may move the logit towards robot, after
    # scaling; None = no cap (files written before it existed).
    turn_taking_cap: float | None = None
    # robot_probability >= threshold: robot; < person_threshold: a live person; between: the
    # caller question is left open. Both chosen on dev (FUSION.md); 0.5 / 0.5 = no band.
    threshold: float = 0.5
    person_threshold: float = 0.5

    def __post_init__(self) -> None:
        for key, cap in self.caps:
            if key not in CAPPED_MESSAGES or not cap >= 0:
                raise ValueError(f"caps: {key!r} {cap} (cappable: {sorted(CAPPED_MESSAGES)})")
        if self.turn_taking_cap is not None and not self.turn_taking_cap >= 0:
            raise ValueError(f"turn_taking_cap must be >= 0, got {self.turn_taking_cap}")
        if not 0.0 <= self.person_threshold <= self.threshold <= 1.0:
            raise ValueError(
                "need 0 <= person_threshold <= threshold <= 1, got "
                f"{self.person_threshold} and {self.threshold}"
            )

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
        """What cue ``name`` with hand-set ``weight`` adds to the robot logit: scaled, capped
        (its own cap, reached smoothly: :func:`soft_cap`; the turn-taking cues' joint cap is
        :meth:`logit`'s)."""
        scaled = self.scale(name, weight) * weight
        cap = self.cap(name, weight)
        return scaled if cap is None else soft_cap(scaled, cap)

    def logit(self, cues: Iterable[tuple[str, float]]) -> float:
        """The robot logit of (cue name, hand-set weight) pairs, as :func:`fuse` sums them:
        bias + each contribution, the turn-taking cues' sum capped at ``turn_taking_cap``
        (before the 3-decimal rounding of the evidence weights)."""
        turn = other = 0.0
        for name, weight in cues:
            if name in TURN_TAKING_CUES:
                turn += self.contribution(name, weight)
            else:
                other += self.contribution(name, weight)
        if self.turn_taking_cap is not None:
            turn = min(turn, self.turn_taking_cap)
        return self.bias + other + turn


# Cue directions the fit may not scale below this. A message replayed within the call is how
# dialers work ("press 2 to hear this message again"); the composed fit calls hold few replays
# (9 %, all robot and all otherwise obvious), so the fit gave it 0.00: no evidence either way,
# not evidence that replays are human. The hand-set weight (pipeline/acoustic.py) stands (issue 17).
SCALE_FLOORS: dict[str, float] = {"replayed_speech_s:+": 1.0}


def soft_cap(x: float, cap: float) -> float:
    """``x`` bounded to +-``cap`` smoothly: ``cap tanh(x / cap)``. Past a hard cap every value
    would tie, and a single clip whose only cue is a capped one would lose its order to every
    other (bench/fusion_ties.py); the soft cap keeps the order and the limit. Linear in a
    common scale s >= 0 of ``x`` and ``cap``, so the fusion's fit stays linear."""
    return cap * math.tanh(x / cap) if cap > 0 else 0.0


# Cue directions a fitted fusion may cap, and the message of a capped cue. Many dialer robots
# play prompts recorded by a real person (真人录音, issue 13): a human voice rules out a TTS
# engine, not a robot, so it may not outvote the dialer's behaviour; the cap, how far it can
# move the verdict towards "person", is chosen on dev calls (models/training/fusion_fit.py).
CAPPED_MESSAGES: dict[str, str] = {"synthetic_voice:-": "synthetic_voice.human_capped"}

# Cue directions whose fitted scale may come out (nearly) zero, and the message that says so: a
# voice judged synthetic that the verdict does not count would otherwise read as evidence with
# weight +0.00 and no reason (the fusion fitted on dev found that it adds nothing the words and
# the dialer's behaviour do not already carry; models/weights/FUSION.md).
UNCOUNTED_MESSAGES: dict[str, str] = {"synthetic_voice:+": "synthetic_voice.synthetic_uncounted"}
UNCOUNTED_SCALE = 0.01  # a fitted scale below this keeps < 1 % of the hand-set weight

# The turn-taking cues: when and how the caller takes turns (reply latency, talking over the
# callee, backchannels, barge-in, prompt restarts, share of the talking). Their summed pull
# towards robot is capped (``FusionModel.turn_taking_cap``, chosen on dev calls): a live agent
# with a regular rhythm shows several of them at once, and they must not call a person a robot
# without the voice or the words (issue 13). What the caller says in reply (reply_relevance,
# no_reaction_to_callee) is not timing and is not capped.
TURN_TAKING_CUES = frozenset(
    {
        "reply_latency_spread_s",
        "barge_in_talk_on_fraction",
        "turn_restart_count",
        "backchannel_rate_per_min",
        "caller_talk_share",
        "response_latency_median_s",
        "response_latency_std_s",
        "talk_over_fraction",
    }
)
# A turn-taking cue shrunk by the cap carries its weight before it in this param (and the cap
# in TURN_TAKING_CAP_PARAM, which adds the note to its sentences: pipeline/messages.py).
WEIGHT_BEFORE_CAP_PARAM = "weight_before_cap"


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
    caller_turns: Turns | None = None,
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
        ``weight_scale``, the decision ``threshold`` (None: the model's), ``sales_threshold``
        (whether a sales pitch was heard) and (without ``model``) the ``bias``.
    model : FusionModel, optional
        Fitted bias, per-cue scales, caps and operating point; None sums the hand-set weights
        with ``config.bias`` and decides at 0.5 (or ``config.threshold``) with no band.
    caller_turns : tuple of (float, float), optional
        Mono recordings: the speech the diarizer took as the caller's (s), carried into the
        verdict.

    Returns
    -------
    Verdict
        Evidence sorted by ``|weight|``, strongest first; weights as applied (scaled).
    """
    evidence = _capped_turn_taking(
        [_applied(e, config=config, model=model) for e in (*text.evidence, *cues.evidence)],
        model=model,
        weight_scale=config.weight_scale,
    )
    probability = _probability(evidence, config=config, model=model)
    threshold, person_threshold = operating_point(config, model)
    return Verdict(
        label=Label.ROBOT if probability >= threshold else Label.HUMAN,
        robot_probability=probability,
        threshold=threshold,
        person_threshold=person_threshold,
        sales_probability=text.sales_probability,
        topic=text.topic,
        evidence=evidence,
        transcript=transcript,
        other_party_transcript=other_transcript,
        audio=audio,
        provenance=provenance,
        sales_threshold=config.sales_threshold,
        caller_turns=caller_turns,
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
    evidence = _capped_turn_taking(
        [
            *(_before_turn_taking_cap(e) for e in verdict.evidence if e.name not in dropped),
            *(_applied(e, config=fusion, model=model) for e in extra),
        ],
        model=model,
        weight_scale=fusion.weight_scale,
    )
    probability = _probability(evidence, config=fusion, model=model)
    threshold, person_threshold = operating_point(fusion, model)
    return dataclasses.replace(
        verdict,
        label=Label.ROBOT if probability >= threshold else Label.HUMAN,
        robot_probability=probability,
        threshold=threshold,
        person_threshold=person_threshold,
        evidence=evidence,
    )


def operating_point(config: FusionConfig, model: FusionModel | None) -> tuple[float, float]:
    """The robot threshold and the lower edge of the uncertain band a verdict is decided by.

    The model's (chosen on dev) unless ``config.threshold`` is set; a threshold set below the
    model's band lowers the band's edge with it. Without a fitted model: 0.5 (or the config's)
    and no band, since a hand-set sum is not calibrated and no band was chosen for it.
    """
    if model is None:
        threshold = 0.5 if config.threshold is None else config.threshold
        return threshold, threshold
    threshold = model.threshold if config.threshold is None else config.threshold
    return threshold, min(model.person_threshold, threshold)


def _applied(evidence: Evidence, *, config: FusionConfig, model: FusionModel | None) -> Evidence:
    """``evidence`` with its hand-set weight scaled (and capped) as the fusion applies it
    (3 decimals); a capped cue's sentences say why it counts less, an uncounted one's why it
    does not count (:data:`UNCOUNTED_MESSAGES`)."""
    name, weight = evidence.name, evidence.weight
    if model is None:
        return dataclasses.replace(evidence, weight=round(weight * config.weight_scale, 3) + 0.0)
    applied = model.contribution(name, weight)
    cap = model.cap(name, weight)
    capped = evidence.code and cap is not None and abs(model.scale(name, weight) * weight) > cap
    out = dataclasses.replace(evidence, weight=round(applied * config.weight_scale, 3) + 0.0)
    key = signed_cue(name, weight)
    uncounted = (
        evidence.code
        and weight != 0.0
        and key in UNCOUNTED_MESSAGES
        and model.scale(name, weight) < UNCOUNTED_SCALE
    )
    if not (capped or uncounted):
        return out
    code = CAPPED_MESSAGES[key] if capped else UNCOUNTED_MESSAGES[key]
    params = dict(evidence.params)
    return dataclasses.replace(
        out, code=code, detail=render(code, params, "en"), detail_zh=render(code, params, "zh")
    )


def _capped_turn_taking(
    evidence: list[Evidence], *, model: FusionModel | None, weight_scale: float
) -> tuple[Evidence, ...]:
    """``evidence`` sorted, with the turn-taking cues' summed pull towards robot capped.

    When the applied weights of :data:`TURN_TAKING_CUES` sum to more than the model's cap,
    each of their robot-side weights shrinks by the same factor until the sum is the cap (their
    human-side weights stay), so every reason still shows what it adds to the logit. A shrunk
    cue keeps its weight before the cap in its params, and its sentences say why it counts less.
    """
    cap = None if model is None else model.turn_taking_cap
    turn = [i for i, e in enumerate(evidence) if e.name in TURN_TAKING_CUES]
    towards_robot = sum(evidence[i].weight for i in turn if evidence[i].weight > 0)
    towards_person = sum(evidence[i].weight for i in turn if evidence[i].weight < 0)
    if cap is None or towards_robot + towards_person <= cap * weight_scale:
        return _sorted(evidence)
    factor = (cap * weight_scale - towards_person) / towards_robot
    out = list(evidence)
    for i in turn:
        e = evidence[i]
        if e.weight <= 0:
            continue
        params = {
            **dict(e.params),
            TURN_TAKING_CAP_PARAM: round(cap * weight_scale, 3),
            WEIGHT_BEFORE_CAP_PARAM: e.weight,
        }
        shrunk = dataclasses.replace(
            e, weight=round(e.weight * factor, 3) + 0.0, params=tuple(sorted(params.items()))
        )
        if e.code:  # evidence built by hand (no code) keeps its sentence, the weight says it
            shrunk = dataclasses.replace(
                shrunk, detail=render(e.code, params, "en"), detail_zh=render(e.code, params, "zh")
            )
        out[i] = shrunk
    return _sorted(out)


def _before_turn_taking_cap(evidence: Evidence) -> Evidence:
    """A verdict's evidence as it was before the turn-taking cap shrunk it (to cap again)."""
    params = dict(evidence.params)
    if WEIGHT_BEFORE_CAP_PARAM not in params:
        return evidence
    weight = float(params.pop(WEIGHT_BEFORE_CAP_PARAM))  # type: ignore[arg-type]
    params.pop(TURN_TAKING_CAP_PARAM, None)
    if evidence.code:
        return dataclasses.replace(
            evidence,
            weight=weight,
            params=tuple(sorted(params.items())),
            detail=render(evidence.code, params, "en"),
            detail_zh=render(evidence.code, params, "zh"),
        )
    return dataclasses.replace(evidence, weight=weight, params=tuple(sorted(params.items())))


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
