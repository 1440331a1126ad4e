"""The limits of the method, as a report states them: measured error rates and how cues combine.

The figures come from one file, ``models/weights/error_rates.json``, which the evaluation
(``robocall train`` / ``robocall evaluate``) regenerates; :func:`load_error_rates` documents its
keys. :func:`limits_paragraph` is what the evidence PDF and the pack's report.json print.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from pipeline.messages import Lang
from pipeline.report import is_untrained
from pipeline.types import Verdict

log = logging.getLogger(__name__)

ERROR_RATES_PATH = Path(__file__).resolve().parents[1] / "models" / "weights" / "error_rates.json"


@dataclass(frozen=True, slots=True)
class ErrorRates:
    """The published error rates a report quotes in its limits (fractions, 0..1)."""

    threshold: float  # the robot-probability threshold they were measured at
    composed_people_called_robots: float  # held-out composed calls: people judged robots
    composed_robots_missed: float  # held-out composed calls: robots judged people
    e2e_people_called_robots: float  # test call mixtures through the whole detector
    e2e_robots_missed: float
    unseen_engine_eer: float  # leave-one-engine-out mean EER, synthetic-voice head


@functools.cache
def load_error_rates(path: Path = ERROR_RATES_PATH) -> ErrorRates | None:
    """The measured error rates from ``models/weights/error_rates.json``; None if unreadable.

    The file (schema ``robocall-error-rates``, version 1) is rewritten by the evaluation with
    the same keys; every rate is a fraction in [0, 1]:

    - ``threshold``: the robot-probability threshold the rates below were measured at;
    - ``composed_calls.people_called_robots`` / ``composed_calls.robots_missed``: false positive
      and miss rates of the fitted fusion on held-out composed calls
      (docs/evaluation_fusion.md, Headline), with ``humans``/``robots`` counts and ``source``;
    - ``end_to_end.people_called_robots`` / ``end_to_end.robots_missed``: the same on the
      test-split call mixtures through the whole detector (ASR included), with counts/source;
    - ``unseen_engines.eer``: mean equal error rate of the synthetic-voice head over
      leave-one-engine-out folds (docs/evaluation.md), with ``source``;
    - ``generated``: how and when the numbers were produced.
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        rates = ErrorRates(
            threshold=float(doc["threshold"]),
            composed_people_called_robots=float(doc["composed_calls"]["people_called_robots"]),
            composed_robots_missed=float(doc["composed_calls"]["robots_missed"]),
            e2e_people_called_robots=float(doc["end_to_end"]["people_called_robots"]),
            e2e_robots_missed=float(doc["end_to_end"]["robots_missed"]),
            unseen_engine_eer=float(doc["unseen_engines"]["eer"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("no error rates for the report's limits (%s): %s", path, exc)
        return None
    if not all(0.0 <= v <= 1.0 for v in dataclasses.astuple(rates)):
        log.warning("error rates in %s are not fractions in [0, 1]; not quoted", path)
        return None
    return rates


def limits_paragraph(verdict: Verdict, lang: Lang, *, rates: ErrorRates | None = None) -> str:
    """One honest paragraph on what this analysis cannot establish, with measured error rates.

    ``rates`` defaults to :func:`load_error_rates`; without any, the paragraph says so.
    """
    rates = rates or load_error_rates()
    gap = "" if lang == "zh" else " "
    return _limits_text(verdict, lang) + gap + _rates_text(verdict, lang, rates)


def _rates_text(verdict: Verdict, lang: Lang, rates: ErrorRates | None) -> str:
    zh = lang == "zh"
    if rates is None:
        return (
            "本机未找到已测得错误率的文件 models/weights/error_rates.json。"
            if zh
            else "The measured error rates (models/weights/error_rates.json) are not available "
            "on this machine."
        )
    pct = {k: _rate(v) for k, v in dataclasses.asdict(rates).items()}
    at = format_threshold(rates.threshold)
    if zh:
        text_ = (
            f"阈值为 {at} 时已测得的错误率：在留出的合成通话上，"
            f"{pct['composed_people_called_robots']}的真人被判为机器人，{pct['composed_robots_missed']}的机器人被漏判；端到端测试通话"
            f"上分别为 {pct['e2e_people_called_robots']} 和 {pct['e2e_robots_missed']}；"
            f"对训练中未见过的语音合成引擎，声音模型的平均等错误率为 {pct['unseen_engine_eer']}。"
        )
    else:
        text_ = (
            f"Measured error rates at threshold {at}: on held-out composed calls "
            f"{pct['composed_people_called_robots']} of people were called robots and "
            f"{pct['composed_robots_missed']} of robots were missed; end to end on test "
            f"calls, {pct['e2e_people_called_robots']} and {pct['e2e_robots_missed']}; for "
            f"speech engines unseen in training the voice model's mean equal error rate is "
            f"{pct['unseen_engine_eer']}."
        )
    if abs(verdict.threshold - rates.threshold) > 1e-9:
        used = format_threshold(verdict.threshold)
        text_ += (
            f"本次分析使用的阈值为 {used}，与测量时不同：阈值越高，被误判为机器人的真人越少，"
            "被漏判的机器人越多。"
            if zh
            else f" This analysis used threshold {used}, not {at}: a higher threshold calls "
            "fewer people robots and misses more robots."
        )
    return text_


def fusion_text(verdict: Verdict, lang: Lang) -> str:
    """How the cues were combined, in the report's language (the provenance line is English)."""
    if lang == "en":
        return verdict.provenance.fusion_method
    if is_untrained(verdict):
        return (
            "各项依据权重的逻辑求和：训练过的模型加入其校准后的对数几率，其他依据使用人工设定的"
            "权重；总和未经拟合，因此概率未经校准。"
        )
    return (
        "拟合的逻辑回归融合：偏置加上每项依据、每个方向一个非负缩放系数，在开发集的合成通话上"
        "按类别平衡拟合；仅双声道录音才有的依据保持规则权重。"
    )


def format_threshold(threshold: float) -> str:
    return f"{threshold:.2f}".rstrip("0").rstrip(".") if threshold else "0"


def _rate(value: float) -> str:
    return f"{value * 100:.1f} %"


def _limits_text(verdict: Verdict, lang: Lang) -> str:
    if lang == "zh":
        weights = (
            "机器人概率由人工设定的权重综合得出，尚未在大量真实通话上训练和校准，"
            "因此 80% 并不表示同类通话中有八成是机器人。"
            if is_untrained(verdict)
            else "机器人概率来自在有限数据上训练和校准的模型，按机器人与真人各占一半校准，"
            "对其他运营商、地区或录音设备未必同样准确。"
        )
        return (
            "本报告由软件自动生成，是证据线索而非定论。"
            + weights
            + "现代语音合成可以很像真人；照稿念的真人、通话质量差、AMR 等强压缩或背景噪声也可能让"
            "真人听起来像机器。语音识别（Whisper）可能听错字词、姓名和数字，短促或嘈杂的通话尤甚。"
            "分析只针对提交的录音本身：无法判断是谁拨打的电话、来电号码是否被伪造，也无法判断录音在"
            "分析之前是否被剪辑；签名的清单只能证明本证据包生成之后没有被改动。个人信息遮盖基于规则，"
            "可能漏遮或多遮。依据本结论行事之前，请由人亲自听一遍录音。"
        )
    weights = (
        "The robot probability combines the cues with hand-set weights that have not been "
        "trained or calibrated on a large set of real calls, so 80% does not mean that 8 in "
        "10 such calls are robots. "
        if is_untrained(verdict)
        else "The robot probability comes from models and a fusion trained and calibrated on "
        "limited data (calibrated as if robots and people were equally likely); it may be "
        "less accurate for other carriers, regions or recording devices. "
    )
    return (
        "This report is made by software; it is evidence to weigh, not proof. "
        + weights
        + "Modern speech synthesis can sound human, and a live agent reading a script, a poor "
        "line, heavy compression (such as AMR) or background noise can make a person sound "
        "mechanical. The speech recogniser (Whisper) can mishear words, names and numbers, "
        "especially in short or noisy calls. The analysis sees only the recording it was "
        "given: it cannot tell who placed the call or whether the caller ID was spoofed, nor "
        "whether the recording was edited before it was analysed; the signed manifest only "
        "shows that nothing changed after this pack was made. Masking of personal data is "
        "rule-based and can miss or over-mask words. A person should listen to the recording "
        "before relying on this verdict."
    )
