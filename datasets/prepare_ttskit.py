"""A multi-speaker Mandarin TTS for training: ttskit's Mellotron + MelGAN, 24 built-in voices.

ttskit 0.3.8 (PyPI, MIT) ships a multi-speaker Mandarin Mellotron (Tacotron 2 with style tokens)
and a MelGAN vocoder as pickled torch modules (``ttskit/resource/model``), 22.05 kHz. Its 24
built-in voices are named like Alibaba Cloud's TTS voices (Aibao, Xiaogang, Siyue, ...) plus
DataBaker's ``biaobei``; a voice is the model's 32-value code of the md5 of its name. Our code
loads the two modules and calls their inference; the package's SDK (which calls a web service
and downloads reference audio) never runs. Its text front end (``mellotron.text``, phkit's pinyin
route) needs the package folder on ``sys.path``: the pickles name top-level ``mellotron`` and
``melgan`` modules.

Lines: Mandarin lines of Kokoro's training build (``prepare_kokoro.read_training_texts``, same
salt: AISHELL-1 transcript pairs and sales lines of train/dev campaigns, none tied to a test
clip). Voices: five dev by stable hash, the rest train; dev lines are spoken by dev voices only.
Rows: source ``ttskit_train``, engine family ``mellotron`` (its own leave-one-out group), 16 kHz.
In the shipped recipe since 2026-12-06 (``docs/voice_generalisation.md`` sections 14-15). The
manifest sits in ``datasets/manifests/ttskit/``, outside ``read_manifests()``'s glob like
Kokoro's training build, so the evaluation samples stay as they were; the recipe names it.
``make corpus`` installs its Python dependencies, all with ``--no-deps``:

    pip install --no-deps ttskit==0.3.8 phkit==0.2.11 aukit==1.4.6 hanziconv==0.3.2 \\
        jieba==0.42.1 inflect==7.6.0 Unidecode==1.4.0 jaraco.functools==4.6.0 typeguard==4.6.1 \\
        dotmap==1.3.30 pydub==0.25.1
    nice -n 10 python datasets/prepare_ttskit.py     # 240 clips, 9 min on 2 cores
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from scipy import signal
from tqdm import tqdm

from models.training.corpus import (
    MANIFEST_DIR,
    REPO_DIR,
    STORE_RATE_HZ,
    CorpusRow,
    builder_parser,
    corpus_cache_dir,
    hash_unit,
    read_manifest,
    write_clip,
    write_manifest,
)

log = logging.getLogger("prepare_ttskit")
NAME = "ttskit_train_v1"
SOURCE = "ttskit_train"
MANIFEST = MANIFEST_DIR / "ttskit" / f"{NAME}.jsonl"
RATE_HZ = 22_050
DEV_VOICES = 5
VOICES = (  # ttskit.resource._speaker_dict (importing it loads the package's SDK)
    "Aibao", "Aicheng", "Aida", "Aijia", "Aijing", "Aimei", "Aina", "Aiqi", "Aitong", "Aiwei",
    "Aixia", "Aiya", "Aiyu", "Aiyue", "Siyue", "Xiaobei", "Xiaogang", "Xiaomei", "Xiaomeng",
    "Xiaowei", "Xiaoxue", "Xiaoyun", "Yina", "biaobei",
)  # fmt: skip
GATE = 0.8  # the stop gate's probability that ends a clip


def kokoro_builder() -> ModuleType:
    """``datasets/prepare_kokoro.py``, whose training lines this build speaks."""
    if "prepare_kokoro" in sys.modules:
        return sys.modules["prepare_kokoro"]
    spec = importlib.util.spec_from_file_location(
        "prepare_kokoro", REPO_DIR / "datasets" / "prepare_kokoro.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["prepare_kokoro"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def voice_splits(voices: Sequence[str] = VOICES) -> dict[str, str]:
    """train or dev per voice: the first :data:`DEV_VOICES` in a stable hash order are dev."""
    ordered = sorted(sorted(voices), key=lambda v: hash_unit(v, salt=NAME))
    return {v: "dev" if i < DEV_VOICES else "train" for i, v in enumerate(ordered)}


def plan(texts: Sequence[Any]) -> list[tuple[Any, str]]:
    """(text, voice) per clip: each split's lines dealt in turn to that split's voices."""
    split_of = voice_splits()
    jobs = []
    for split in ("train", "dev"):
        voices = [v for v in sorted(VOICES) if split_of[v] == split]
        lines = [t for t in texts if t.split == split]
        jobs += [(text, voices[i % len(voices)]) for i, text in enumerate(lines)]
    return jobs


def speaker_code(voice: str) -> np.ndarray:
    """ttskit's (1, 32) speaker input of a voice name: the md5's hex digits, centred."""
    digits = np.array([int(c, 16) for c in hashlib.md5(voice.encode("utf8")).hexdigest()])
    return np.asarray((digits[None] - 7) / 10, dtype=np.float32)


class Ttskit:
    """The two pickled modules and the text front end of the installed ``ttskit`` package."""

    def __init__(self) -> None:
        import torch

        spec = importlib.util.find_spec("ttskit")
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError("ttskit is not installed (see this file's docstring)")
        package = Path(next(iter(spec.submodule_search_locations)))
        sys.path.insert(0, str(package))  # the pickles' top-level module names
        from mellotron.text import text_to_sequence

        self._to_ids = text_to_sequence
        models = package / "resource" / "model"
        self._mellotron = torch.load(
            models / "mellotron.kuangdd-mspk.pt", map_location="cpu", weights_only=False
        )
        self._mellotron.eval()
        self._melgan = torch.load(
            models / "melgan.kuangdd.pt", map_location="cpu", weights_only=False
        )
        self._melgan.eval()

    def speak(self, text: str, voice: str, *, seed: int) -> np.ndarray:
        """16 kHz samples of ``text`` in ``voice``; ``seed`` fixes the decoder's dropout."""
        import torch

        ids = torch.LongTensor(self._to_ids(text, "hanzi"))[None]
        torch.manual_seed(seed)
        with torch.inference_mode():
            _, mel, gates, _ = self._mellotron.inference(
                (ids, 0, torch.from_numpy(speaker_code(voice)), None)
            )
            gate = torch.sigmoid(gates).numpy()[0]
            end = int(np.argmax(gate > GATE) or np.argmax(gate) or gate.shape[0])
            wav = self._melgan.inference(mel[:, :, :end]) / 32768.0
        return np.asarray(
            signal.resample_poly(wav.reshape(-1).numpy().astype(np.float64), 320, 441)
        )


def make_row(text: Any, voice: str, *, rel: str, duration_s: float) -> CorpusRow:
    licences = kokoro_builder().TEXT_LICENCES
    return CorpusRow(
        id=rel.removesuffix(".flac"),
        path=rel,
        root="cache",
        label="robot",
        kind="tts",
        language="zh",
        speaker=f"ttskit:{voice}",
        engine="ttskit_mellotron",
        engine_family="mellotron",
        source=SOURCE,
        group_id=text.group_id,
        campaign=text.campaign,
        split=text.split,
        duration_s=duration_s,
        orig_sr_hz=RATE_HZ,
        licence="generated here with ttskit 0.3.8 (PyPI, MIT) Mellotron + MelGAN; text: "
        + licences[text.origin],
        text=text.text,
        extra=(("kind", text.kind),),
    )


def main(argv: list[str] | None = None) -> int:
    parser = builder_parser(__doc__.splitlines()[0], name=NAME)
    parser.set_defaults(manifest=MANIFEST)
    parser.add_argument("--per-language", type=int, default=240, help="lines asked of Kokoro's")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    texts = [
        t for t in kokoro_builder().read_training_texts(args.per_language) if t.language == "zh"
    ]
    jobs = plan(texts)[: args.limit]
    previous = {r.id: r for r in read_manifest(args.manifest)} if args.manifest.exists() else {}
    out = args.out or corpus_cache_dir() / NAME
    engine: Ttskit | None = None
    rows = []
    for text, voice in tqdm(jobs, desc=NAME, unit="clip", disable=args.no_progress):
        rel = f"{NAME}/zh/{voice}/{text.group_id.replace('/', '_')}.flac"
        path = out / rel.removeprefix(f"{NAME}/")
        if path.exists() and rel.removesuffix(".flac") in previous:  # a re-run resumes
            rows.append(previous[rel.removesuffix(".flac")])
            continue
        engine = engine or Ttskit()
        samples = engine.speak(text.text, voice, seed=int(hash_unit(rel, salt=NAME) * 2**31))
        duration_s = write_clip(path, samples, sample_rate_hz=STORE_RATE_HZ)
        rows.append(make_row(text, voice, rel=rel, duration_s=duration_s))
    write_manifest(rows, args.manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
