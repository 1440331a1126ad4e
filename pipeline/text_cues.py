"""Rule-based text branch (``rules-v1``): transparent cues from the caller's transcript.

:class:`RuleTextClassifier` implements :class:`pipeline.types.TextClassifier` for Mandarin and
English (mixed text too) with the phrase lists in ``pipeline/lexicon.py``. It reports

- ``sales_probability``: is this an unsolicited pitch at all (offers, prices, openers, calls to
  action; scam robocalls count as pitches), from distinct cue phrases through a logistic;
- ``topic``: the topic whose cue phrases weigh most, ``"other"`` for a pitch without topic cues,
  ``"none"`` when ``sales_probability < 0.5``; ``topic_scores`` is ``sales_probability`` times
  each topic's share of cue weight, best first (the mapping of the English script categories
  is documented above ``TOPIC_PHRASES`` in the lexicon);
- evidence for the robot-vs-human question, whose weights are the table below.

It stays one module of about 510 lines: every rule reads the one joined transcript (``_Doc``,
its offsets and segment times), and the weight table below is the contract of all of them.

Robot-logit weights (hand-set, untrained; positive = robot, every |w| <= 2.5)
----------------------------------------------------------------------------

===================== ============================================== =========== ===============
evidence name         condition                                      weight      why
===================== ============================================== =========== ===============
scripted_phrase       >= 1 strong IVR phrase ("press 1", "按1",      +2.0, +0.25 a live agent
                      "this is an automated message", "回复TD退订",  per extra   asks for no key
                      "系统自动拨打", a self-declared bot); a key     phrase,     press now and
                      press joined to "dial ... and" or "拨打..."    cap 2.5     is no recording
                      explains a later call: not counted
scripted_phrase       only weak template phrases ("your call is      +0.75,      dialer and IVR
                      important to us", "i repeat", "如不需要请     +0.25 each, queue wording;
                      直接挂机"); not agents' courtesy formulas     cap 1.25    people seldom
                                                                                 say it
disfluency_rate       >= 2 fillers/self-repairs, >= 1.5 per 100      -0.8        TTS never
                      words (or Chinese characters)                              hesitates
disfluency_rate       >= 4 events and >= 4 per 100                   -1.2        clearly
                                                                                 spontaneous
disfluency_rate       no event in >= 60 words / >= 100 characters    0.0         see below
no_reaction_to_callee stereo: >= 3 callee turns followed by caller   +1.5        talks on
                      speech, no reaction to any                                 regardless
                      ... and a challenge ("are you a robot?",       +0.5 more,
                      "你是谁") among them went unanswered            cap 2.0
no_reaction_to_callee fewer turns, but a challenge went unanswered   +1.0
no_reaction_to_callee >= 2 reactions and >= half the turns           -1.2        people respond;
                                                                                 intent bots do
                                                                                 too, so < 1.5
sales_phrases         any sales cue phrase                           0.0         both classes
                                                                                 pitch
===================== ============================================== =========== ===============

Disfluency is kept modest on purpose. Whisper was trained on cleaned-up transcripts and drops
most "um"/"uh"/"嗯"/"呃", and a human agent reading a script is fluent too, so a fluent
transcript is reported but weighs nothing: it is not specific to machines (issue 13: it made
86 % of typed human persuasion and some human business calls lean robot). Fillers that
survive ASR are evidence of a person (-0.8/-1.2), but ASR can also insert them (hallucinated
"嗯" on noise), so this never outweighs one IVR phrase. Reactions are judged on segment times
only: a caller segment reacts to a callee turn if it starts within ``RESPONSE_WINDOW_S`` of the
turn's end and opens with an acknowledgement (within ``ACK_DELAY_S``), repeats a content
word/character pair the callee just said that the caller had not used before, or answers a
question ("who is this?" -> "this is").
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from pipeline import lexicon as lx
from pipeline.fuse import sigmoid
from pipeline.messages import make_evidence
from pipeline.types import Evidence, ModelInfo, Segment, TextScore, Transcript

MODEL_ID = "rules-v1"
# sha256 of the rule source: the phrase lists *and* this file's weights and thresholds, so the
# provenance changes whenever any rule does.
RULES_SHA256 = hashlib.sha256(
    Path(lx.__file__).read_bytes() + Path(__file__).read_bytes()
).hexdigest()

# --- weights (robot logit), see the table above -------------------------------------------------
MAX_ABS_WEIGHT = 2.5
W_SCRIPTED_STRONG = 2.0
W_SCRIPTED_WEAK = 0.75
W_SCRIPTED_EXTRA = 0.25
W_SCRIPTED_WEAK_CAP = 1.25
W_DISFLUENT = -0.8
W_VERY_DISFLUENT = -1.2
W_FLUENT_LONG = 0.0
W_NO_REACTION = 1.5
W_IGNORED_CHALLENGE_EXTRA = 0.5
W_NO_REACTION_CAP = 2.0
W_IGNORED_CHALLENGE = 1.0
W_REACTS = -1.2
W_SALES = 0.0

# --- thresholds -----------------------------------------------------------------------------
SALES_MIDPOINT = 1.5  # cue weight at which sales_probability = 0.5
SALES_SLOPE = 2.0  # logistic slope per unit of cue weight
PER_PATTERN_MATCHES = 2  # distinct phrases one pattern may contribute (word lists add up fast)
TOPIC_TO_SALES = 0.5  # each unit of topic-cue weight adds this much sales-cue weight...
TOPIC_TO_SALES_CAP = 4.0  # ...for at most this many units
CALL_TO_ACTION = 1.0  # sales-cue weight of a strong IVR phrase ("press 1" asks for action)
OTHER_PRIOR = 0.6  # topic weight "other" starts with: one weak topic word does not beat it
MIN_UNITS_FOR_RATE = 20  # fewer words/characters than this: disfluency is not measured
DISFLUENT_EVENTS, DISFLUENT_RATE = 2, 1.5  # events, per 100 units
VERY_DISFLUENT_EVENTS, VERY_DISFLUENT_RATE = 4, 4.0
FLUENT_MIN_WORDS, FLUENT_MIN_CHARS = 60, 100  # "a long stretch" without any event
CALLEE_TURN_GAP_S = 1.0  # callee segments closer than this form one turn
RESPONSE_WINDOW_S = 6.0  # the caller's next segment must start within this after the turn
ACK_DELAY_S = 3.0  # an acknowledgement counts only this soon after the turn
MIN_JUDGED_TURNS = 3  # "no reaction at all" needs this many callee turns with a caller reply
MIN_TURN_UNITS = 2  # callee turns shorter than this (a lone "嗯") need no reaction

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RE = re.compile(f"[{_CJK}]")
_NOT_WORD_RE = re.compile(f"[^0-9a-z{_CJK}%$#*]+")
_SPACE_NEAR_CJK_RE = re.compile(f"(?<=[{_CJK}]) | (?=[{_CJK}])")
_TOKEN_RE = re.compile(f"[{_CJK}]|[0-9a-z]+")
_LATIN_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENTENCE_END_RE = re.compile(r"[.!?;。！？；\n]+")
_QUESTION_RE = re.compile(r"[?？]|吗|呢|什么|谁|哪|怎么|\b(?:who|what|why|how|are you|is this)\b")


def normalize_text(text: str) -> str:
    """NFKC, case-fold, punctuation to spaces, no space next to a Chinese character.

    Examples: ``"请按 １，"`` -> ``"请按1"``; ``"Press ONE!"`` -> ``"press one"``.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    spaced = _NOT_WORD_RE.sub(" ", folded).strip()
    return _SPACE_NEAR_CJK_RE.sub("", spaced)


def _light(text: str) -> str:
    """NFKC and case-fold only: punctuation kept for fillers and sentence ends."""
    return unicodedata.normalize("NFKC", text).casefold()


def _compile(pattern: str) -> re.Pattern[str]:
    if _CJK_RE.search(pattern):
        return re.compile(pattern)
    return re.compile(f"(?<![a-z0-9])(?:{pattern})(?![a-z0-9])")


@dataclass(frozen=True, slots=True)
class _Hit:
    phrase: str  # the matched normalised text
    weight: float
    span_s: tuple[float, float] | None
    offset: int  # where the phrase starts in the joined text


@dataclass(frozen=True, slots=True)
class _Doc:
    """The caller's segments, normalised and joined, with a map from offsets to segment times."""

    text: str
    starts: tuple[int, ...]
    spans: tuple[tuple[float, float], ...]

    @classmethod
    def of(cls, segments: tuple[Segment, ...]) -> _Doc:
        text, starts, spans = "", [], []
        for seg in segments:
            norm = normalize_text(seg.text)
            if not norm:
                continue
            if text and not (_CJK_RE.match(text[-1]) or _CJK_RE.match(norm[0])):
                text += " "
            starts.append(len(text))
            spans.append((float(seg.start_s), float(seg.end_s)))
            text += norm
        return cls(text, tuple(starts), tuple(spans))

    def span_at(self, offset: int) -> tuple[float, float] | None:
        if not self.starts:
            return None
        return self.spans[max(0, bisect.bisect_right(self.starts, offset) - 1)]

    def find(
        self,
        rules: tuple[tuple[re.Pattern[str], float], ...],
        *,
        unless_before: re.Pattern[str] | None = None,
    ) -> list[_Hit]:
        """Distinct matched phrases (first occurrence each, at most PER_PATTERN_MATCHES per
        pattern), in text order; with ``unless_before``, a match does not count when that
        pattern (anchored with ``$``) matches the ``lexicon.KEY_CONTEXT_CHARS`` before it."""
        hits: dict[str, _Hit] = {}
        for regex, weight in rules:
            taken = 0
            for m in regex.finditer(self.text):
                phrase = m.group(0).strip()
                if not phrase or phrase in hits:
                    continue
                if unless_before and unless_before.search(
                    self.text, max(0, m.start() - lx.KEY_CONTEXT_CHARS), m.start()
                ):
                    continue
                hits[phrase] = _Hit(phrase, weight, self.span_at(m.start()), m.start())
                taken += 1
                if taken == PER_PATTERN_MATCHES:
                    break
        return sorted(hits.values(), key=lambda h: h.offset)


def _rules(entries: tuple[tuple[str, float], ...]) -> tuple[tuple[re.Pattern[str], float], ...]:
    return tuple((_compile(p), w) for p, w in entries)


_SALES = _rules(lx.SALES_PHRASES)
_TOPICS = tuple(
    (topic, tuple((_compile(p), w) for t, p, w in lx.TOPIC_PHRASES if t == topic))
    for topic in lx.TOPICS
)
_KEYS = _rules(tuple((p, W_SCRIPTED_STRONG) for p in lx.KEY_PRESSES))
_STRONG = _rules(tuple((p, W_SCRIPTED_STRONG) for p in lx.SCRIPTED_STRONG))
_LATER_CALL_RE = re.compile(lx.LATER_CALL)
_WEAK = _rules(tuple((p, W_SCRIPTED_WEAK) for p in lx.SCRIPTED_WEAK))
_FILLERS = tuple(re.compile(p) for p in (*lx.FILLERS_EN, *lx.FILLERS_ZH))
_REPAIRS = tuple(re.compile(p) for p in lx.REPAIRS)
_ACK_RE = re.compile(
    r"^[\W_]*(?:{})".format("|".join(lx.ACKNOWLEDGEMENTS))
    + "|"
    + r"^[\W_]*(?:{})(?:[的啊呀吧了哈])?(?=[\s,，。.!！?？、…-]|$)".format(
        "|".join(lx.SHORT_ACKNOWLEDGEMENTS)
    )
)
_CHALLENGES = tuple(_compile(p) for p in lx.CHALLENGES)
_ANSWERS = tuple(_compile(p) for p in lx.ANSWER_MARKERS)


def _phrases(hits: list[_Hit], limit: int = 4) -> tuple[str, ...]:
    """The first ``limit`` matched phrases, quoted by the message catalogue."""
    return tuple(h.phrase for h in hits[:limit])


def _clip(weight: float) -> float:
    return max(-MAX_ABS_WEIGHT, min(MAX_ABS_WEIGHT, weight))


# --- sales and topic -------------------------------------------------------------------------


def _sales_and_topic(
    doc: _Doc, *, has_strong_script: bool
) -> tuple[float, str, tuple[tuple[str, float], ...], Evidence | None]:
    sales_hits = doc.find(_SALES)
    raw = {topic: sum(h.weight for h in doc.find(rules)) for topic, rules in _TOPICS}
    topic_weight = sum(raw.values())
    cue_weight = (
        sum(h.weight for h in sales_hits)
        + TOPIC_TO_SALES * min(topic_weight, TOPIC_TO_SALES_CAP)
        + (CALL_TO_ACTION if has_strong_script else 0.0)
    )
    probability = sigmoid(SALES_SLOPE * (cue_weight - SALES_MIDPOINT)) if doc.text else 0.0
    raw["other"] += OTHER_PRIOR
    total = sum(raw.values())
    order = {topic: i for i, topic in enumerate(lx.TOPICS)}
    ranked = sorted(raw, key=lambda t: (-raw[t], order[t]))
    scores = tuple((t, probability * raw[t] / total) for t in ranked)
    topic = ranked[0] if probability >= 0.5 else "none"
    evidence = None
    if sales_hits:
        evidence = make_evidence(
            "text",
            "sales_phrases",
            value=float(len(sales_hits)),
            weight=W_SALES,
            code="sales_phrases",
            params={"phrase_count": float(len(sales_hits)), "phrases": _phrases(sales_hits)},
            span_s=sales_hits[0].span_s,
        )
    return probability, topic, scores, evidence


# --- scripted / IVR phrasing -----------------------------------------------------------------


def _machine_phrases(doc: _Doc) -> list[_Hit]:
    """Key presses asked for now, and the other strong phrases, in text order.

    A key press joined to an instruction for a later call ("dial the hotline again and press
    3", "拨打400热线按2") is how a live agent explains a menu, not a menu playing.
    """
    keys = doc.find(_KEYS, unless_before=_LATER_CALL_RE)
    return sorted(keys + doc.find(_STRONG), key=lambda hit: hit.offset)


def _scripted(doc: _Doc) -> Evidence | None:
    strong, weak = _machine_phrases(doc), doc.find(_WEAK)
    hits = strong + weak
    if not hits:
        return None
    if strong:
        weight = min(MAX_ABS_WEIGHT, W_SCRIPTED_STRONG + W_SCRIPTED_EXTRA * (len(hits) - 1))
        code = "scripted_phrase.strong"
    else:
        weight = min(W_SCRIPTED_WEAK_CAP, W_SCRIPTED_WEAK + W_SCRIPTED_EXTRA * (len(hits) - 1))
        code = "scripted_phrase.weak"
    return make_evidence(
        "text",
        "scripted_phrase",
        value=float(len(hits)),
        weight=weight,
        code=code,
        params={"phrases": _phrases(strong or weak), "phrase_count": float(len(hits))},
        span_s=(strong or weak)[0].span_s,
    )


def machine_markers(transcript: Transcript) -> tuple[str, ...]:
    """The machine-specific phrases (``lexicon.KEY_PRESSES`` asked for now,
    ``lexicon.SCRIPTED_STRONG``) in ``transcript``, in order.

    Key presses, IVR menus, opt-out instructions, "this is an automated message", a
    self-declared bot: what a machine says and a person on the phone does not (issue 13). The
    trained robot head gives robot evidence to a transcript without any of them only above a
    higher bar (``models/text_clf.py``), because business wording alone is no sign of a robot.
    """
    return tuple(h.phrase for h in _machine_phrases(_Doc.of(transcript.segments)))


# --- disfluency ------------------------------------------------------------------------------


def _count_repairs(light: str) -> int:
    count = sum(len(r.findall(light)) for r in _REPAIRS)
    for sentence in _SENTENCE_END_RE.split(light):
        words = [w for w in _LATIN_WORD_RE.findall(sentence) if not w.isdigit()]
        for i in range(1, len(words)):
            if words[i] == words[i - 1] and words[i] not in lx.INTENDED_DOUBLES:
                count += 1  # "I I think", "the the"
            elif i >= 3 and words[i - 1 : i + 1] == words[i - 3 : i - 1]:
                count += 1  # "I was I was"
    return count


def _disfluency(transcript: Transcript, doc: _Doc) -> Evidence | None:
    light = "\n".join(_light(s.text) for s in transcript.segments)
    chars = len(_CJK_RE.findall(doc.text))
    words = len(_TOKEN_RE.findall(doc.text)) - chars
    units = chars + words
    if units < MIN_UNITS_FOR_RATE:
        return None
    fillers = sum(len(r.findall(light)) for r in _FILLERS)
    repairs = _count_repairs(light)
    events = fillers + repairs
    rate = 100.0 * events / units
    unit = "chars" if chars >= words else "words"
    if events >= VERY_DISFLUENT_EVENTS and rate >= VERY_DISFLUENT_RATE:
        weight, case = W_VERY_DISFLUENT, "very"
    elif events >= DISFLUENT_EVENTS and rate >= DISFLUENT_RATE:
        weight, case = W_DISFLUENT, "some"
    elif events == 0 and (words >= FLUENT_MIN_WORDS or chars >= FLUENT_MIN_CHARS):
        weight, case = W_FLUENT_LONG, "fluent"
    else:
        weight, case = 0.0, "unclear"
    return make_evidence(
        "text",
        "disfluency_rate",
        value=rate,
        weight=weight,
        code=f"disfluency_rate.{case}",
        params={
            "fillers": float(fillers),
            "repairs": float(repairs),
            "units": float(units),
            "unit": unit,
            "per_100": round(rate, 2),
        },
        span_s=(doc.spans[0][0], doc.spans[-1][1]) if doc.spans else None,
    )


# --- reaction to the callee (stereo) ---------------------------------------------------------


def _content_units(norm: str) -> set[str]:
    units = {
        a + b
        for a, b in zip(norm, norm[1:], strict=False)
        if _CJK_RE.match(a)
        and _CJK_RE.match(b)
        and a not in lx.FUNCTION_CHARS_ZH
        and b not in lx.FUNCTION_CHARS_ZH
    }
    for word in re.findall(r"[a-z]{3,}", norm):
        if word not in lx.STOPWORDS_EN:
            units.add(word[:-1] if word.endswith("s") and len(word) > 3 else word)
    return units


def _callee_turns(other: Transcript) -> list[tuple[float, float, str]]:
    turns: list[tuple[float, float, str]] = []
    for seg in other.segments:
        if not seg.text.strip():
            continue
        if turns and seg.start_s - turns[-1][1] < CALLEE_TURN_GAP_S:
            start, _, text = turns[-1]
            turns[-1] = (start, seg.end_s, f"{text} {seg.text}")
        else:
            turns.append((seg.start_s, seg.end_s, seg.text))
    return turns


def _reaction(transcript: Transcript, other: Transcript) -> Evidence | None:
    caller = [s for s in transcript.segments if normalize_text(s.text)]
    judged = reacted = 0
    ignored: list[str] = []
    first_s: float | None = None
    last_s = 0.0
    for start, end, text in _callee_turns(other):
        norm = normalize_text(text)
        if len(_TOKEN_RE.findall(norm)) < MIN_TURN_UNITS:
            continue
        nxt = next((s for s in caller if start < s.start_s <= end + RESPONSE_WINDOW_S), None)
        if nxt is None:
            continue  # the caller said nothing after this turn: nothing to judge
        judged += 1
        first_s = float(start) if first_s is None else first_s
        last_s = float(nxt.end_s)
        before = normalize_text(" ".join(s.text for s in caller if s.start_s < nxt.start_s))
        reply = normalize_text(nxt.text)
        echoed = (_content_units(norm) - _content_units(before)) & _content_units(reply)
        acked = nxt.start_s - end <= ACK_DELAY_S and bool(_ACK_RE.search(_light(nxt.text)))
        answered = bool(_QUESTION_RE.search(_light(text))) and any(
            r.search(reply[:30]) for r in _ANSWERS
        )
        if echoed or acked or answered:
            reacted += 1
        elif any(r.search(norm) for r in _CHALLENGES):
            ignored.append(text.strip())
    if judged == 0 or first_s is None:
        return None
    if reacted == 0 and judged >= MIN_JUDGED_TURNS:
        extra = W_IGNORED_CHALLENGE_EXTRA if ignored else 0.0
        weight = min(W_NO_REACTION_CAP, W_NO_REACTION + extra)
        case = "never_question" if ignored else "never"
    elif ignored:
        weight, case = W_IGNORED_CHALLENGE, "question"
    elif reacted >= 2 and reacted >= judged / 2:
        weight, case = W_REACTS, "reacts"
    else:
        weight, case = 0.0, "unclear"
    return make_evidence(
        "text",
        "no_reaction_to_callee",
        value=(judged - reacted) / judged,
        weight=weight,
        code=f"no_reaction_to_callee.{case}",
        params={
            "turns": float(judged),
            "reacted": float(reacted),
            "unanswered": float(judged - reacted),
            "question": ignored[0] if ignored else "",
        },
        span_s=(first_s, last_s),
    )


# --- the classifier --------------------------------------------------------------------------


class RuleTextClassifier:
    """Transparent, rule-based :class:`~pipeline.types.TextClassifier` (``rules-v1``).

    Examples
    --------
    >>> from pipeline.types import Segment, Transcript
    >>> seg = Segment(0.0, 3.0, "您好，如需了解详情请按1", -0.2, 0.01, 1.2)
    >>> score = RuleTextClassifier().score(Transcript("zh", 0.99, (seg,)))
    >>> [e.name for e in score.evidence][0]
    'scripted_phrase'
    """

    model_info = ModelInfo(role="text", model_id=MODEL_ID, sha256=RULES_SHA256)

    def score(self, transcript: Transcript, *, other_party: Transcript | None = None) -> TextScore:
        """Score the caller's transcript.

        Parameters
        ----------
        transcript : Transcript
            The caller's channel (or the whole call when mono), Mandarin and/or English.
        other_party : Transcript or None
            The callee's channel of a stereo recording; enables ``no_reaction_to_callee``.

        Returns
        -------
        TextScore
            ``sales_probability`` in [0, 1], ``topic``, ``topic_scores`` (best first) and
            evidence sorted by ``|weight|``, strongest first, each ``|weight| <= 2.5``.
        """
        doc = _Doc.of(transcript.segments)
        scripted = _scripted(doc)
        strong = scripted is not None and scripted.weight >= W_SCRIPTED_STRONG
        probability, topic, scores, sales = _sales_and_topic(doc, has_strong_script=strong)
        found = [scripted, sales, _disfluency(transcript, doc)]
        if other_party is not None:
            found.append(_reaction(transcript, other_party))
        evidence = tuple(
            sorted(
                (dataclasses.replace(e, weight=_clip(e.weight)) for e in found if e is not None),
                key=lambda e: (-abs(e.weight), e.name),
            )
        )
        return TextScore(
            sales_probability=probability, topic=topic, topic_scores=scores, evidence=evidence
        )
