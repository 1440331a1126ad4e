"""The composition of all stages: bytes in, :class:`Verdict` out.

Models are injected (``Transcriber``, ``TextClassifier``, optionally a ``SyntheticVoiceScorer``
and a fitted ``FusionModel``) so that tests run with fakes and the service decides where weights
come from (``models/loading.py``). So are ``ContextCue``s: evidence from outside the recording
(a prompt index of earlier calls, ``service/campaigns/heard_before.py``), fused like the
acoustic cues.
"""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from pipeline.acoustic import acoustic_cues
from pipeline.audio import AudioSource, load_audio
from pipeline.behaviour import Diarizer, PartyTurns, behaviour_cues, stereo_turns, turn_texts
from pipeline.config import DetectorConfig
from pipeline.errors import AudioTooShortError, EmptyAudioError
from pipeline.fuse import FUSION_METHOD, FusionModel, fuse
from pipeline.messages import make_evidence
from pipeline.provenance import make_provenance
from pipeline.queue import (
    QUEUE_MIN_SHARE,
    HoldMusic,
    LineMenu,
    QueueAnnouncement,
    find_announcement,
    find_hold_music,
    find_line_menu,
    hears_words,
    judged_transcript,
    muted,
    queue_share,
    union,
)
from pipeline.tones import tone_spans
from pipeline.types import (
    AcousticCues,
    Audio,
    ContextCue,
    Evidence,
    ModelInfo,
    SyntheticVoiceScore,
    SyntheticVoiceScorer,
    TextClassifier,
    Transcriber,
    Transcript,
    Turns,
    Verdict,
)
from pipeline.vad import subtract, voiced_intervals

log = logging.getLogger(__name__)

# Less caller speech than this (energy VAD) is a word or a cut-off recording: reported as too
# short to judge, not as "no speech" and not with a verdict made of one word (issue 17).
MIN_SPEECH_TO_JUDGE_S = 1.0
# What the transcriber hears, recorded in every verdict's provenance (issue 11).
ASR_INPUT = "decoded"


@dataclass(frozen=True, slots=True)
class Detector:
    transcriber: Transcriber
    text_classifier: TextClassifier
    config: DetectorConfig
    synth_scorer: SyntheticVoiceScorer | None = None  # trained synthetic-voice head, optional
    fusion: FusionModel | None = None  # fitted cue scales and bias; None = hand-set sum
    context_cues: tuple[ContextCue, ...] = ()  # evidence from outside the recording
    diarizer: Diarizer | None = None  # mono: splits the mix into caller/callee (models.diarize)

    def detect(self, src: AudioSource | BinaryIO, *, name: str | None = None) -> Verdict:
        """Analyse one recording.

        Parameters
        ----------
        src : str, Path, bytes or binary file object
            The recording, in any container/codec PyAV decodes.
        name : str, optional
            Name to report (defaults to the file name of a path).

        Raises
        ------
        RobocallError
            Any input problem, with a stable ``code`` (see ``pipeline/errors.py``).
        """
        audio = load_audio(
            src, limits=self.config.audio, name=name, caller_channel=self.config.caller_channel
        )
        log.info(
            "analysing %s sha256=%s duration=%.1fs",
            audio.info.name,
            audio.info.sha256[:12],
            audio.info.duration_s,
        )
        return self.detect_audio(audio)

    def detect_audio(self, audio: Audio) -> Verdict:
        """Analyse an already decoded recording.

        The ASR hears the caller's channel as decoded (16 kHz): on the ``call_channel`` copy the
        English WER nearly doubled (14.9 -> 28.0 %) and Mandarin CER rose 4 points
        (docs/performance.md). The synthetic-voice head scores the ``call_channel`` copy, what
        its training audio went through, with an encoder pass of its own (and, for a head with
        the AASIST block, one AASIST window: ``models/weights/SYNTH_HEAD.md``), in a second
        thread.
        """
        caller = audio.caller()
        scorer = self.synth_scorer
        diarizer = self.diarizer if audio.other_party() is None else None  # mono only
        # The head's encoder pass and the mono split run beside the ASR, not after it (issue
        # 17): CTranslate2 and NumPy's products release the GIL, and the Whisper model has a
        # worker for each pass (models/loading.py). Neither needs the transcript.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="beside-asr") as pool:
            scoring = None if scorer is None else pool.submit(scorer.score, caller)
            splitting = None if diarizer is None else pool.submit(diarizer, caller)
            transcript = self.transcriber.transcribe(caller)
            synth = None if scoring is None else scoring.result()  # applies call_channel itself
            mono_turns = None if splitting is None else splitting.result()
        other_samples = audio.other_party()
        other: Transcript | None = None
        if other_samples is not None and _has_signal(other_samples):
            other = self.transcriber.transcribe(other_samples)
        cues = acoustic_cues(audio)
        tone_heard = tuple(tone_spans(caller))  # left out of every cue's speech (pipeline.tones)
        if cues.speech_s < MIN_SPEECH_TO_JUDGE_S:
            tones_s = sum(end - start for start, end in tone_heard)
            tones = (
                f" besides {tones_s:.1f} s of telephone tones (ringing, a busy tone or beeps, "
                "which are nobody's voice)"
                if tones_s > 0.0
                else ""
            )
            if cues.speech_s == 0.0 and tones:
                # An unanswered call: nothing but the ringing or a busy tone.
                raise EmptyAudioError(f"{audio.info.name}: no speech on the caller channel{tones}")
            # A word: no verdict, and say how much is needed rather than "no speech" (issue 17).
            raise AudioTooShortError(
                f"{audio.info.name}: too short to judge: {cues.speech_s:.1f} s of sound on the "
                f"caller channel{tones}; need at least {MIN_SPEECH_TO_JUDGE_S:g} s of speech "
                "(a sentence or more)"
            )
        if not transcript.segments:
            # Noise, music, tones or speech in another language: nothing we can judge honestly.
            raise EmptyAudioError(
                f"{audio.info.name}: no speech recognised in {'/'.join(self.config.asr.languages)} "
                f"({cues.speech_s:.1f} s of sound on the caller channel, but no words)"
            )
        judged, synth, cues, set_aside = self._without_hold(audio, transcript, synth, cues)
        behaviour = self._behaviour(audio, transcript, other, mono_turns)  # issue 13
        if behaviour:
            cues = dataclasses.replace(cues, evidence=(*cues.evidence, *behaviour))
        models: tuple[ModelInfo, ...] = (
            self.transcriber.model_info,
            self.text_classifier.model_info,
        )
        if scorer is not None:
            models = (*models, scorer.model_info)
        if synth is not None:
            cues = dataclasses.replace(
                cues, evidence=(*cues.evidence, synthetic_voice_evidence(synth))
            )
        caller_turns = split_caller(mono_turns)
        context = tuple(
            e
            for cue in self.context_cues
            if (e := cue(audio, transcript, caller_turns=caller_turns)) is not None
        )
        if context:
            cues = dataclasses.replace(cues, evidence=(*cues.evidence, *context))
        text = self.text_classifier.score(judged, other_party=other)
        if self.fusion is not None:
            models = (*models, ModelInfo("fusion", self.fusion.model_id, self.fusion.sha256))
        provenance = make_provenance(
            models=models,
            config=self.config,
            fusion_method=FUSION_METHOD if self.fusion is None else self.fusion.method,
            asr_input=ASR_INPUT,
        )
        verdict = fuse(
            text=text,
            cues=cues,
            transcript=transcript,
            other_transcript=other,
            audio=audio.info,
            provenance=provenance,
            config=self.config.fusion,
            model=self.fusion,
            caller_turns=caller_turns,
        )
        return dataclasses.replace(verdict, tones=tone_heard, set_aside=set_aside)

    def caller_turns(self, audio: Audio) -> Turns | None:
        """The caller's speech of a mono recording as :meth:`detect_audio` splits it (its
        verdict's ``caller_turns``); None for stereo, one voice or without a diarizer. For code
        that needs the turns without a verdict (a carrier's index over simulated calls)."""
        if self.diarizer is None or audio.other_party() is not None:
            return None
        return split_caller(self.diarizer(audio.caller()))

    def _without_hold(
        self,
        audio: Audio,
        transcript: Transcript,
        synth: SyntheticVoiceScore | None,
        cues: AcousticCues,
    ) -> tuple[Transcript, SyntheticVoiceScore | None, AcousticCues, Turns]:
        """The transcript, voice score and cues to judge the caller by, with what a call centre
        plays (the called line's recorded menu, a recorded queue announcement, looping hold
        music: :mod:`pipeline.queue`) set aside when the caller also speaks outside it;
        otherwise the three unchanged; and the stretches set aside (``Verdict.set_aside``). Set
        aside: its words (the text heads), its sound (every acoustic cue is measured again
        without it; the voice head scores the channel again with it silenced); a reason of
        weight 0 for each says what was set aside."""
        menu = find_line_menu(transcript)
        if not cues.repeats and menu is None:
            return transcript, synth, cues, ()  # the common call stops here
        caller = audio.caller()
        announcement = (
            find_announcement(transcript, cues.repeats)
            if any(queue_share(s.text) >= QUEUE_MIN_SHARE for s in transcript.segments)
            else None
        )
        voiced = voiced_intervals(caller)
        music = find_hold_music(
            transcript, cues.repeats, voiced, announcement=announcement,
            hears=lambda span: hears_words(self.transcriber.transcribe, caller, span),
        ) if cues.repeats else None  # fmt: skip
        if announcement is None and music is None and menu is None:
            return transcript, synth, cues, ()
        spans = union([
            *(announcement.spans if announcement else ()), *(music.spans if music else ()),
            *((menu.span,) if menu else ())])  # fmt: skip
        judged = judged_transcript(transcript, announcement, music, menu)
        left_s = sum(b - a for a, b in subtract(voiced, spans))
        if not judged.segments or left_s < MIN_SPEECH_TO_JUDGE_S:
            return transcript, synth, cues, ()
        again = acoustic_cues(audio, set_aside=spans)
        notes = _hold_notes(announcement, music, menu)
        cues = dataclasses.replace(again, evidence=(*again.evidence, *notes))
        if synth is not None and self.synth_scorer is not None:
            synth = self.synth_scorer.score(muted(caller, spans))
        log.info("set aside what the called line plays: %s", spans)
        return judged, synth, cues, spans

    def _behaviour(
        self,
        audio: Audio,
        transcript: Transcript,
        other: Transcript | None,
        mono_turns: PartyTurns | None,
    ) -> tuple[Evidence, ...]:
        """Behaviour cues: stereo from the two channels, mono from the diarizer's turns (None:
        no diarizer, no cues)."""
        callee = audio.other_party()
        if callee is not None:
            turns = stereo_turns(audio.caller(), callee, reason=audio.info.caller_channel_reason)
            pairs = turn_texts(turns, transcript, other) if other is not None else []
            return behaviour_cues(turns, caller_samples=audio.caller(), text_pairs=pairs)
        if mono_turns is None:
            return ()
        return behaviour_cues(mono_turns, caller_samples=audio.caller(), is_stereo=False)


def split_caller(turns: PartyTurns | None) -> Turns | None:
    """The caller's speech of a mono recording the diarizer split into two voices; None when
    it heard one voice (nothing was told apart) or did not run."""
    return turns.caller if turns is not None and turns.callee else None


SYNTH_WEIGHT_CLIP = 3.0  # |weight| cap of the synthetic-voice evidence, in robot-logit units


def synthetic_voice_evidence(score: SyntheticVoiceScore) -> Evidence:
    """The head's calibrated log-odds as one piece of evidence, clipped to +-SYNTH_WEIGHT_CLIP.

    The log-odds is a likelihood ratio at even prior (Platt fit with balanced classes), so it
    adds to the fusion's logistic sum like the other cues; the clip keeps one model from
    outvoting every other cue (a new TTS engine can fool it, see docs/evaluation.md).
    """
    weight = max(-SYNTH_WEIGHT_CLIP, min(SYNTH_WEIGHT_CLIP, score.log_odds))
    case = "synthetic" if score.log_odds > 0 else "human"
    return make_evidence(
        "acoustic",
        "synthetic_voice",
        value=round(score.probability, 4),
        weight=round(weight, 3) + 0.0,
        code=f"synthetic_voice.{case}",
        params={
            "probability": round(score.probability, 4),
            "log_odds": round(score.log_odds, 3),
            "pooling": score.pooling,
            "windows": float(len(score.windows)),
        },
        span_s=score.span_s,
    )


QUOTE_CHARS = 60  # how much of an announcement a reason quotes


def _quote(text: str) -> str:
    """``text`` cut to :data:`QUOTE_CHARS` characters."""
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1].rstrip() + "\u2026"


def _hold_notes(
    announcement: QueueAnnouncement | None, music: HoldMusic | None, menu: LineMenu | None
) -> list[Evidence]:
    """The reasons of weight 0 that say what :meth:`Detector._without_hold` set aside."""
    notes = []
    if menu is not None:
        notes.append(make_evidence(
            "structure", "line_menu", value=round(menu.seconds, 3), weight=0.0,
            code="line_menu.found",
            params={"seconds": round(menu.seconds, 3), "quote": _quote(menu.quote)},
            span_s=menu.span))  # fmt: skip
    if announcement is not None:
        notes.append(make_evidence(
            "structure", "queue_announcement", value=round(announcement.seconds, 3), weight=0.0,
            code="queue_announcement.found",
            params={"plays": float(announcement.replays + 1),
                    "seconds": round(announcement.seconds, 3),
                    "start_s": announcement.start_s, "quote": _quote(announcement.quote)},
            span_s=announcement.spans[0]))  # fmt: skip
    if music is not None:
        notes.append(make_evidence(
            "structure", "hold_music", value=round(music.seconds, 3), weight=0.0,
            code="hold_music.found",
            params={"seconds": round(music.seconds, 3), "start_s": music.start_s},
            span_s=(music.spans[0][0], max(b for _, b in music.spans))))  # fmt: skip
    return notes


def _has_signal(samples: np.ndarray) -> bool:
    return bool(samples.size) and float(np.max(np.abs(samples))) > 1e-4
