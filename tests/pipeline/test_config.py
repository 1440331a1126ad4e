from pathlib import Path

import pytest

from pipeline.config import AsrConfig, AudioLimits, DetectorConfig, load_config


def test_defaults_are_valid_and_hashable() -> None:
    config = DetectorConfig()
    assert hash(config) == hash(DetectorConfig())
    assert config.asr.languages == ("zh", "en")
    assert config.config_hash() == DetectorConfig().config_hash()


def test_config_hash_changes_with_any_field() -> None:
    assert load_config(asr__beam_size=2).config_hash() != DetectorConfig().config_hash()


def test_toml_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "robocall.toml"
    path.write_text('[asr]\nbackend = "openai"\nlanguages = ["zh"]\n[fusion]\nthreshold = 0.7\n')
    config = load_config(path, asr__languages=("en", "zh"), audio__max_duration_s=None)
    assert config.asr.backend == "openai"
    assert config.asr.languages == ("en", "zh")
    assert config.fusion.threshold == 0.7
    assert config.audio == AudioLimits()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"asr__backend": "vosk"}, "backend"),
        ({"audio__max_duration_s": -1.0}, "max_duration_s"),
        ({"asr__nonsense": 1}, "nonsense"),
        ({"caller_channel": 3}, "caller_channel"),
    ],
)
def test_bad_values_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        load_config(**kwargs)


def test_asr_config_rejects_empty_languages() -> None:
    with pytest.raises(ValueError, match="languages"):
        AsrConfig(languages=())
