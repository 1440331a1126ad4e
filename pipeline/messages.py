"""The message catalogue: every sentence a person reads about a verdict, in English and Chinese.

Each :class:`~pipeline.types.Evidence` carries a stable message ``code`` (``"<cue>.<case>"``,
e.g. ``"digital_silence_s.found"``) and named ``params``; :func:`render` turns them into one
plain sentence per language. Cues build their evidence with :func:`make_evidence`, which stores
both sentences in the record (``detail`` English, ``detail_zh`` Chinese), so a stored verdict
reads the same after this catalogue changes, and a verdict from before the catalogue (no
``code``) still renders from its ``detail``.

Plain words (issues 14, 15): the sentences hold what a person can check (seconds, semitones,
dB, clock times, quoted phrases) and leave the technical figures (log-odds, pooling, window
counts, correlations) in ``params`` only. Probabilities go through :func:`format_probability`
(``">99 %"``, ``"<1 %"``, never 100 % or 0 %), the one formatter every renderer uses.

:func:`headline` answers the two questions of a verdict apart (issue 13): who called (robot or
live person, or "cannot tell" in the uncertain band) and what the call was (a sales pitch, with
its topic, or not).

Over 500 lines, and one module on purpose: most of it is the catalogue table, and every sentence
a person reads should be findable (and translatable) in one place.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pipeline.types import Evidence, EvidenceSource, Param, Verdict

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, Lang] = ("zh", "en")

# A param of evidence whose weight the turn-taking cap shrunk (pipeline/fuse.py): its sentences
# end with the note TURN_TAKING_NOTE.
TURN_TAKING_CAP_PARAM = "turn_taking_cap"
TURN_TAKING_NOTE = (
    "Turn-taking alone may only push the verdict so far towards a robot (a person can keep a "
    "regular rhythm too), so this counts less than measured.",
    "仅凭对答节奏最多只能把判断推向机器人有限的程度（真人说话也可能节奏规律），"
    "所以这一项的分量比测得的小。",
)

# code -> (English, Chinese). Placeholders are str.format fields over the evidence params, with
# these extra format specs: ":pct" (format_probability), ":clock" (format_clock), ":quotes"
# (a tuple of phrases, quoted and joined), ":unit" (words / Chinese characters), ":kinds"
# (kinds of personal data), ":when" (earlier / other).
CATALOGUE: dict[str, tuple[str, str]] = {
    # --- acoustic: pitch and voice ---------------------------------------------------------
    "pitch_std_st": (
        "The pitch of the voice rises and falls by {std_st:.1f} semitones on average "
        "({voiced_s:.0f} s of voiced speech); a flat, monotone voice sounds machine-made.",
        "音高平均起伏 {std_st:.1f} 个半音"
        "（有声语音共 {voiced_s:.0f} 秒）；平板单调的声音像机器合成。",
    ),
    "pitch_range_st": (
        "From its low to its high points the pitch spans {range_st:.1f} semitones.",
        "音高从低到高跨越 {range_st:.1f} 个半音。",
    ),
    "pitch_roughness_st": (
        "The pitch line bends by {roughness_st:.3f} semitones every 10 ms (typical value); an "
        "unnaturally smooth pitch line sounds machine-made.",
        "音高曲线每 10 毫秒的转折幅度约为 {roughness_st:.3f} 个半音；"
        "过于平滑的音高曲线像机器合成。",
    ),
    "jitter_local_pct": (
        "From one vocal-cord cycle to the next the pitch wavers by {jitter_pct:.2f} % "
        "(over {cycle_pairs:.0f} cycles); a perfectly steady voice sounds machine-made.",
        "相邻两次声带振动的周期相差 {jitter_pct:.2f}%（共 {cycle_pairs:.0f} 对周期）；"
        "过于稳定的声音像机器合成。",
    ),
    "shimmer_db": (
        "From one vocal-cord cycle to the next the loudness wavers by {shimmer_db:.2f} dB "
        "(over {cycle_pairs:.0f} cycles).",
        "相邻两次声带振动的响度相差 {shimmer_db:.2f} dB（共 {cycle_pairs:.0f} 对周期）。",
    ),
    "spectral_flatness_mean": (
        "The voice's spectrum is {flatness:.3f} flat on average (1 = pure noise); this depends on "
        "the phone line more than on the speaker.",
        "语音频谱的平坦度平均为 {flatness:.3f}"
        "（1 表示纯噪声）；它更多取决于电话线路，而不是说话人。",
    ),
    "spectral_flatness_std": (
        "The flatness of the voice's spectrum varies by {flatness_std:.3f}.",
        "语音频谱平坦度的波动为 {flatness_std:.3f}。",
    ),
    "spectral_centroid_mean_hz": (
        "The voice's brightness (centre of its spectrum) is {centroid_hz:.0f} Hz on average; "
        "this depends on the phone line more than on the speaker.",
        "声音的明亮度（频谱重心）平均为 {centroid_hz:.0f} Hz；它更多取决于电话线路，而不是说话人。",
    ),
    "spectral_centroid_std_hz": (
        "The voice's brightness varies by {centroid_std_hz:.0f} Hz.",
        "声音明亮度（频谱重心）的波动为 {centroid_std_hz:.0f} Hz。",
    ),
    # --- acoustic: loudness and rhythm -----------------------------------------------------
    "loudness_std_db": (
        "The loudness of the speech varies by {loudness_std_db:.1f} dB; a voice that keeps one "
        "exact loudness sounds machine-made.",
        "说话响度的变化幅度为 {loudness_std_db:.1f} dB；响度始终不变的声音像机器合成。",
    ),
    "utterance_loudness_std_db": (
        "The {utterances:.0f} sentences differ in loudness by {loudness_std_db:.1f} dB; recorded "
        "prompts are all equally loud, while a person moves against the phone.",
        "{utterances:.0f} 句话之间的响度相差 {loudness_std_db:.1f} dB；录好的语音每句一样响，"
        "真人说话时与话筒的距离会变。",
    ),
    "syllable_interval_cv": (
        "Syllables come every {interval_s:.2f} s, and the spacing varies by {cv:.0%} of that; "
        "a rhythm as even as a metronome sounds machine-made.",
        "音节约每 {interval_s:.2f} 秒一个，间隔的变化幅度为平均值的 {cv:.0%}；"
        "像节拍器一样均匀的节奏像机器合成。",
    ),
    "pause_cv": (
        "The {pauses:.0f} pauses between sentences last {mean_s:.2f} s on average and vary by "
        "{cv:.0%} of that; a dialler inserts pauses of one fixed length.",
        "句间的 {pauses:.0f} 次停顿平均 {mean_s:.2f} 秒，长短变化幅度为平均值的 {cv:.0%}；"
        "自动外呼系统插入的停顿长度固定。",
    ),
    # --- structure -------------------------------------------------------------------------
    "digital_silence_s.none": (
        "Between sentences the line never goes completely dead (no digital silence).",
        "句与句之间线路从未完全无声（没有数字静音）。",
    ),
    "digital_silence_s.found": (
        "Between sentences the line goes completely dead for {silence_s:.1f} s (at "
        "{start_s:clock}): the caller's side is digital audio with nothing added. Prompts "
        "spliced by a dialler leave such silence, and so does a live agent's phone that mutes "
        "the pauses, so it counts neither way.",
        "句与句之间线路有 {silence_s:.1f} 秒完全无声（{start_s:clock} 处）："
        "来电方一侧是未叠加任何噪声的数字音频。自动外呼系统拼接的录音会留下这种静音，"
        "人工坐席的电话在停顿时静音也会如此，所以它不偏向任何一方。",
    ),
    "replayed_speech_s.none": (
        "No part of the caller's speech repeats earlier audio exactly.",
        "来电方说的话中没有与前面完全相同的重复片段。",
    ),
    "queue_announcement.found": (
        "A recorded queue announcement played {plays:.0f} times ({seconds:.1f} s in all, first at "
        "{start_s:clock}: {quote:quotes}); call centres play these while you wait for an agent, "
        "so it is not counted as the caller's voice or words.",
        "来电方线路上播放了 {plays:.0f} 次排队录音（共 {seconds:.1f} 秒，首次在 {start_s:clock}："
        "{quote:quotes}）；客服中心在转接人工之前会播放这类录音，因此不计为来电方本人的声音和话语。",
    ),
    "line_menu.found": (
        "The recording opens with the called line's own recorded menu ({seconds:.1f} s: "
        "{quote:quotes}); a company plays this when you call it, and a dialer that calls you does "
        "not thank you for calling, so it is not counted as the caller's voice or words.",
        "录音开头是所拨线路自己的语音菜单（{seconds:.1f} 秒：{quote:quotes}）；这是您致电一家公司时"
        "对方播放的录音，打给您的外呼机器人不会感谢您的来电，因此不计为来电方本人的声音和话语。",
    ),
    "hold_music.found": (
        "{seconds:.1f} s of sound with no words repeats itself exactly (first at {start_s:clock}), "
        "like looping hold music; it is not counted as the caller's voice.",
        "有 {seconds:.1f} 秒没有话语的声音在原样循环（首次在 {start_s:clock}），"
        "像是等候音乐，因此不计为来电方本人的声音。",
    ),
    "replayed_speech_s.found": (
        "{replayed_s:.1f} s of the caller's speech is an exact replay of earlier audio (said at "
        "{first_s:clock}, again at {again_s:clock}); a person cannot say something twice this "
        "alike.",
        "来电方有 {replayed_s:.1f} 秒的语音与前面的录音完全相同（{first_s:clock} 说过，"
        "{again_s:clock} 再次出现）；真人不可能把话说得两次一模一样。",
    ),
    "response_latency_median_s": (
        "The caller answered {turns:.0f} times, typically {median_s:.2f} s after the callee "
        "stopped talking.",
        "来电方回应了 {turns:.0f} 次，通常在接听方说完 {median_s:.2f} 秒后开口。",
    ),
    "talk_over_fraction": (
        "The caller started talking over the callee in {over:.0f} of {turns:.0f} turns; a "
        "playing recording does not wait.",
        "在 {turns:.0f} 次对答中，"
        "来电方有 {over:.0f} 次在接听方说完之前就开口；播放中的录音不会等人。",
    ),
    "response_latency_std_s": (
        "The caller's reply delay varies by {std_s:.2f} s over {replies:.0f} replies; a person's "
        "varies, a robot answers after nearly the same delay each time.",
        "来电方 {replies:.0f} 次回应的延迟波动 {std_s:.2f} 秒；真人每次不同，机器人每次几乎一样。",
    ),
    # --- behaviour: turn-taking in a two-party call (pipeline/behaviour.py) -----------------
    "reply_latency_spread_s": (
        "The caller answered {replies:.0f} callee turns after {median_s:.2f} s (median); the delay "
        "varies by {spread_s:.2f} s. A robot answers after nearly the same delay every time; a "
        "person's delay varies by about half a second.",
        "来电方回应了接听方 {replies:.0f} 次，延迟中位数 {median_s:.2f} 秒，"
        "波动 {spread_s:.2f} 秒；机器人每次回应的延迟几乎一样，真人的延迟通常相差半秒左右。",
    ),
    "barge_in_talk_on_fraction": (
        "The callee interrupted {interruptions:.0f} times; the caller talked on for "
        "{talk_on_s:.1f} s or more in {talked_on:.0f} of them.",
        "接听方插话 {interruptions:.0f} 次，其中 {talked_on:.0f} 次来电方继续说了 "
        "{talk_on_s:.1f} 秒以上。",
    ),
    "turn_restart_count.found": (
        "{restarts:.0f} caller turn(s) after the callee spoke start with the same audio as the "
        "turn before (first at {at_s:clock}): a recorded prompt played again from its beginning.",
        "接听方说话后，来电方有 {restarts:.0f} 次从头重放上一段同样的录音"
        "（第一次在 {at_s:clock}）。",
    ),
    "turn_restart_count.none": (
        "None of the caller's {turns:.0f} turns restarts the one before.",
        "来电方的 {turns:.0f} 段话中没有一段是从头重放上一段。",
    ),
    "backchannel_rate_per_min.found": (
        'The caller made {found:.0f} short listener sounds (such as "mm", "right") during '
        "{callee_s:.0f} s of callee speech, as a person listening does.",
        "接听方说话的 {callee_s:.0f} 秒里，来电方发出 {found:.0f} 次“嗯”“对”之类的回应声，"
        "像真人在听。",
    ),
    "backchannel_rate_per_min.none": (
        'The caller made no listener sounds (such as "mm", "right") during {callee_s:.0f} s '
        "of callee speech; a person listening usually does.",
        "接听方说话的 {callee_s:.0f} 秒里，来电方没有发出任何“嗯”“对”之类的回应声；"
        "真人在听时通常会有。",
    ),
    "reply_relevance": (
        "The caller's replies take up {share:pct} of the words the callee had just said "
        "({replies:.0f} replies; least related at {at_s:clock}).",
        "来电方的回答平均接上了接听方刚说内容的 {share:pct}（{replies:.0f} 次回答；"
        "最不相关的一次在 {at_s:clock}）。",
    ),
    "caller_talk_share": (
        "The caller speaks {share:pct} of the call's speech time.",
        "来电方说话时间占通话语音的 {share:pct}。",
    ),
    "prompt_seen_before.audio": (
        "The same recorded prompt was heard in {calls:.0f} {when:when} call(s); replayed audio "
        "makes up {share:pct} of the caller's speech here.",
        "同一段录音提示在{when:when} {calls:.0f} 通电话中出现过；重放的录音占本次来电方语音的 "
        "{share:pct}。",
    ),
    "prompt_seen_before.audio_numbers": (
        "The same recorded prompt was heard in {calls:.0f} {when:when} call(s) from "
        "{numbers:.0f} caller number(s); replayed audio makes up {share:pct} of the caller's "
        "speech here.",
        "同一段录音提示在{when:when} {calls:.0f} 通电话中出现过，来自 {numbers:.0f} 个来电号码；"
        "重放的录音占本次来电方语音的 {share:pct}。",
    ),
    "prompt_seen_before.audio_part": (
        "A recording heard in {calls:.0f} {when:when} call(s) makes up only {share:pct} of the "
        "caller's speech here; call centres play recorded greetings and notices too, so this "
        "does not count either way.",
        "在{when:when} {calls:.0f} 通电话中出现过的一段录音只占本次来电方语音的 {share:pct}；"
        "人工坐席的来电也会播放录制的问候或提示，因此不计入判断。",
    ),
    "prompt_seen_before.audio_part_numbers": (
        "A recording heard in {calls:.0f} {when:when} call(s) from {numbers:.0f} caller "
        "number(s) makes up only {share:pct} of the caller's speech here; call centres play "
        "recorded greetings and notices too, so this does not count either way.",
        "在{when:when} {calls:.0f} 通电话中出现过（来自 {numbers:.0f} 个来电号码）的一段录音只占"
        "本次来电方语音的 {share:pct}；人工坐席的来电也会播放录制的问候或提示，因此不计入判断。",
    ),
    "prompt_seen_before.script": (
        "Nearly the same script was heard in {calls:.0f} {when:when} call(s).",
        "几乎相同的话术在{when:when} {calls:.0f} 通电话中出现过。",
    ),
    "prompt_seen_before.script_numbers": (
        "Nearly the same script was heard in {calls:.0f} {when:when} call(s) from "
        "{numbers:.0f} caller number(s).",
        "几乎相同的话术在{when:when} {calls:.0f} 通电话中出现过，来自 {numbers:.0f} 个来电号码。",
    ),
    # --- text --------------------------------------------------------------------------------
    "sales_phrases": (
        "The caller used {phrase_count:.0f} sales phrase(s) such as {phrases:quotes}; people "
        "sell too, so this does not count either way.",
        "来电方说了 {phrase_count:.0f} 个推销用语，例如{phrases:quotes}；真人也会推销，"
        "所以这一项不影响判断。",
    ),
    "scripted_phrase.strong": (
        "The caller used the wording of an automated dialler: {phrases:quotes}; a live agent "
        "rarely asks you to press a key.",
        "来电方使用了自动外呼系统的用语：{phrases:quotes}；真人坐席很少让人按键。",
    ),
    "scripted_phrase.weak": (
        "The caller used template phrases that robots use (people sometimes do too): "
        "{phrases:quotes}.",
        "来电方使用了机器人常用的模板话术（真人有时也会说）：{phrases:quotes}。",
    ),
    "disfluency_rate.very": (
        "{fillers:.0f} filler word(s) (um, uh) and {repairs:.0f} self-correction(s) in "
        "{units:.0f} {unit:unit}: clearly hesitant, as a person speaking freely is.",
        "在 {units:.0f} 个{unit:unit}中有 {fillers:.0f} 个口头语"
        "（嗯、那个）和 {repairs:.0f} 处改口："
        "明显在犹豫，像真人随口说话。",
    ),
    "disfluency_rate.some": (
        "{fillers:.0f} filler word(s) (um, uh) and {repairs:.0f} self-correction(s) in "
        "{units:.0f} {unit:unit}: some hesitation, as a person speaking freely has.",
        "在 {units:.0f} 个{unit:unit}中有 {fillers:.0f} 个口头语"
        "（嗯、那个）和 {repairs:.0f} 处改口："
        "有些犹豫，像真人随口说话。",
    ),
    "disfluency_rate.fluent": (
        "Not one filler word or self-correction in {units:.0f} {unit:unit}; that counts for "
        "neither side: speech recognition drops filler words and fluent people exist.",
        "在 {units:.0f} 个{unit:unit}中没有一个口头语或改口；这不算任何一方的证据："
        "语音识别会漏掉口头语，说话流利的人也很多。",
    ),
    "disfluency_rate.unclear": (
        "{fillers:.0f} filler word(s) (um, uh) and {repairs:.0f} self-correction(s) in "
        "{units:.0f} {unit:unit}: not enough to tell.",
        "在 {units:.0f} 个{unit:unit}中有 {fillers:.0f} 个口头语"
        "（嗯、那个）和 {repairs:.0f} 处改口："
        "不足以判断。",
    ),
    "no_reaction_to_callee.never": (
        "The caller never reacted to what the callee said ({unanswered:.0f} of {turns:.0f} "
        "turns): it talked on regardless.",
        "接听方说了 {turns:.0f} 次话，来电方 {unanswered:.0f} 次都没有回应，只顾自己往下说。",
    ),
    "no_reaction_to_callee.never_question": (
        "The caller never reacted to what the callee said ({unanswered:.0f} of {turns:.0f} "
        "turns), not even to \u201c{question}\u201d: it talked on regardless.",
        "接听方说了 {turns:.0f} 次话，来电方 {unanswered:.0f} 次都没有回应，"
        "连\u201c{question}\u201d"
        "也不理，只顾自己往下说。",
    ),
    "no_reaction_to_callee.question": (
        "The caller talked on over a direct question: \u201c{question}\u201d.",
        "接听方直接提问\u201c{question}\u201d，来电方却不理会，继续往下说。",
    ),
    "no_reaction_to_callee.reacts": (
        "The caller responded to what the callee said ({reacted:.0f} of {turns:.0f} turns), as "
        "people do.",
        "来电方对接听方的话作出了回应（{turns:.0f} 次中有 {reacted:.0f} 次），像真人一样。",
    ),
    "no_reaction_to_callee.unclear": (
        "The caller reacted to {reacted:.0f} of {turns:.0f} things the callee said: not enough "
        "to tell.",
        "接听方说了 {turns:.0f} 次话，来电方回应了 {reacted:.0f} 次：不足以判断。",
    ),
    "recites_personal_data": (
        "The caller recited what looks like the callee's personal data ({kinds:kinds}): it may "
        "have been sold or leaked.",
        "来电方念出了疑似接听方的个人信息（{kinds:kinds}）：这些信息可能已被出售或泄露。",
    ),
    # --- trained models ----------------------------------------------------------------------
    "robot_script_text.robot": (
        "To the trained text model the wording reads like a robot's script (a person reading a "
        "script can read like this too).",
        "经过训练的文本模型认为，这段话像机器人的固定话术（照稿念的真人也可能如此）。",
    ),
    "robot_script_text.neutral": (
        "The trained text model finds nothing in the wording that only a robot's script says; "
        "that is no sign of a person either.",
        "经过训练的文本模型在这段话里没有发现机器人话术特有的说法；这也不说明来电方是真人。",
    ),
    "synthetic_voice.synthetic": (
        "The trained voice model judges the voice synthetic: {probability:pct} likely to be "
        "machine-made.",
        "经过训练的声音模型判断这是合成的声音：机器合成的可能性为 {probability:pct}。",
    ),
    "synthetic_voice.human": (
        "The trained voice model judges the voice a real person's: {probability:pct} likely to "
        "be machine-made.",
        "经过训练的声音模型判断这是真人的声音：机器合成的可能性为 {probability:pct}。",
    ),
    "synthetic_voice.synthetic_uncounted": (
        "The trained voice model judges the voice synthetic ({probability:pct} likely to be "
        "machine-made); the verdict gives this no weight: on the calls it was fitted on, a "
        "synthetic-sounding voice showed nothing that the words and the caller's behaviour did "
        "not already show.",
        "经过训练的声音模型判断这是合成的声音（机器合成的可能性为 {probability:pct}）；"
        "但在用于拟合的通话中，合成声音没有提供话术和来电方行为之外的信息，所以判断时不计入这一点。",
    ),
    "synthetic_voice.human_capped": (
        "The trained voice model judges the voice a real person's ({probability:pct} likely to "
        "be machine-made); but robots also play prompts recorded by a real person, so a real "
        "voice alone does not show that a live person is calling.",
        "经过训练的声音模型判断这是真人的声音（机器合成的可能性为 {probability:pct}）；"
        "但电销机器人也会播放真人录制的语音，所以仅凭真人的声音不能说明是真人在打电话。",
    ),
}

# evidence name -> (English, Chinese) title of a reason
TITLES: dict[str, tuple[str, str]] = {
    "pitch_std_st": ("Pitch variation (semitones)", "音高变化幅度（半音）"),
    "pitch_range_st": ("Pitch range (semitones)", "音高范围（半音）"),
    "pitch_roughness_st": ("Pitch roughness (semitones)", "音高逐帧起伏（半音）"),
    "jitter_local_pct": ("Pitch wavering, cycle to cycle (%)", "声带振动周期的微小波动（%）"),
    "shimmer_db": ("Loudness wavering, cycle to cycle (dB)", "声带振动响度的微小波动（dB）"),
    "spectral_flatness_mean": ("Spectrum flatness, mean", "频谱平坦度均值"),
    "spectral_flatness_std": ("Spectrum flatness, variation", "频谱平坦度波动"),
    "spectral_centroid_mean_hz": ("Voice brightness, mean (Hz)", "声音明亮度均值（Hz）"),
    "spectral_centroid_std_hz": ("Voice brightness, variation (Hz)", "声音明亮度波动（Hz）"),
    "loudness_std_db": ("Loudness variation (dB)", "响度变化（dB）"),
    "utterance_loudness_std_db": ("Loudness spread between sentences (dB)", "各句响度差异（dB）"),
    "syllable_interval_cv": ("Syllable rhythm variation", "音节节奏的变化"),
    "pause_cv": ("Pause length variation", "停顿长短的变化"),
    "digital_silence_s": ("Digital silence (s)", "数字静音（秒）"),
    "replayed_speech_s": ("Identical speech replayed (s)", "重复播放的同一段语音（秒）"),
    "queue_announcement": ("Recorded queue announcement (s)", "排队等候录音（秒）"),
    "hold_music": ("Looping hold music (s)", "循环等候音乐（秒）"),
    "line_menu": ("Recorded menu of the called line (s)", "所拨线路的语音菜单（秒）"),
    "response_latency_std_s": ("Reply delay variation (s)", "回应延迟的波动（秒）"),
    "response_latency_median_s": ("Typical reply delay (s)", "回应延迟中位数（秒）"),
    "talk_over_fraction": ("Talking over the callee (share of turns)", "抢话比例"),
    "reply_latency_spread_s": (
        "Reply delay variation, turn by turn (s)",
        "逐次回应延迟的波动（秒）",
    ),
    "barge_in_talk_on_fraction": ("Talks on when interrupted (share)", "被打断后继续说的比例"),
    "turn_restart_count": ("Prompt restarted from the beginning", "录音从头重放"),
    "backchannel_rate_per_min": ("Listener sounds (per minute)", "倾听回应声（每分钟）"),
    "reply_relevance": ("Replies related to the callee's words", "回答与对方话语的相关度"),
    "caller_talk_share": ("Caller's share of the talking", "来电方说话时间占比"),
    "sales_phrases": ("Sales phrases", "推销用语"),
    "scripted_phrase": ("Scripted or automated-dialler wording", "固定话术 / 自动外呼用语"),
    "disfluency_rate": ("Filler words (um, uh) per 100 words", "口头语（嗯、那个）比例"),
    "no_reaction_to_callee": ("No reaction to the callee", "不回应接听方的话"),
    "recites_personal_data": ("Recites the callee's personal data", "念出接听方个人信息"),
    "robot_script_text": ("Wording, trained text model", "用语（文本模型）"),
    "synthetic_voice": ("Synthetic voice, trained voice model", "合成声音（声音模型）"),
    "prompt_seen_before": ("Prompt heard in other calls", "在其他来电中出现过的录音"),
}
TOPICS: dict[str, tuple[str, str]] = {
    "real_estate": ("real estate", "房地产"),
    "insurance": ("insurance", "保险"),
    "loan": ("loan", "贷款"),
    "car": ("cars", "汽车"),
    "education": ("education", "教育培训"),
    "other": ("other", "其他"),
    "scam": ("suspected scam", "疑似诈骗"),
}
PERSONAL_DATA: dict[str, tuple[str, str]] = {
    "name": ("name", "姓名"),
    "phone": ("phone number", "电话号码"),
    "cn_id": ("ID number", "身份证号"),
    "bank_card": ("bank card", "银行卡"),
    "address": ("address", "住址"),
    "history": (
        "account details (an amount, date or reference number)",
        "账户信息（金额、日期或单号）",
    ),
}
_UNITS: dict[str, tuple[str, str]] = {
    "words": ("words", "词"),
    "chars": ("Chinese characters", "汉字"),
}
_WHEN: dict[str, tuple[str, str]] = {"earlier": ("earlier", "此前的"), "other": ("other", "其他")}
# headline parts (English, Chinese)
_WHO_ROBOT_SELLING = ("Electronic sales robot", "电子营销机器人")
_WHO_ROBOT = ("Robot", "机器人")
_WHO_PERSON = ("Live person", "真人")
_PITCH = ("sales pitch", "推销")
_PITCH_TOPIC = ("sales pitch (topic: {topic})", "推销（内容：{topic}）")
_NO_PITCH = ("no sales pitch heard", "未听到推销")
_TOO_LITTLE = ("too little said to tell whether it was a sales pitch", "话太少，无法判断是否推销")
_SEPARATOR = (" \u2013 ", "，")
# the uncertain band (issue 13): the caller question is left open, with the side it leans to
_WHO_UNCERTAIN = (
    "Cannot tell whether a robot or a live person called ({lean}, {p})",
    "无法判断来电的是机器人还是真人（{lean}，{p}）",
)
_CALLER_CHANNEL = ("Caller on channel {c}: {why}", "来电方在第 {c} 声道：{why}")
# Why a channel of a recording was taken as the caller's (pipeline.audio, AudioInfo's
# caller_channel_reason and its Chinese twin): code -> (English, Chinese) pieces, str.format over
# their params; a reason is one piece or a piece and a note after it.
CHANNEL_REASONS: dict[str, tuple[str, str]] = {
    "mono": ("mono recording", "单声道录音"),
    "fake_stereo": (
        "all {n} channels are identical (fake stereo): treated as mono",
        "{n} 个声道内容相同（伪立体声），按单声道处理",
    ),
    "forced": ("channel {c} set by caller_channel", "第 {c} 声道由 caller_channel 参数指定"),
    "forced_silent": (" (it is silent)", "（该声道无声）"),
    "ignored": (" (caller_channel={forced} ignored)", "（已忽略 caller_channel={forced}）"),
    "ignored_channels": (
        " (caller_channel={forced} ignored: {n} channels)",
        "（已忽略 caller_channel={forced}：只有 {n} 个声道）",
    ),
    "others_silent": (
        "channel {quiet} is silent; channel {c} is the caller",
        "第 {quiet} 声道无声；第 {c} 声道是来电方",
    ),
    "no_speech": (
        "no speech found on any channel; channel {c} by default",
        "各声道都未检测到语音；默认取第 {c} 声道",
    ),
    "first_and_most": (
        "channel {c} speaks first ({first_s:.1f} s) and most ({speech_s:.1f} s of {total_s:.1f} s)",
        "第 {c} 声道最先开口（{first_s:.1f} 秒）且说话最多（共 {total_s:.1f} 秒中说了 "
        "{speech_s:.1f} 秒）",
    ),
    "first_same": (
        "channel {c} speaks first ({first_s:.1f} s); both speak about as much ({speech_s:.1f} s "
        "and {other_s:.1f} s of {total_s:.1f} s)",
        "第 {c} 声道最先开口（{first_s:.1f} 秒）；两个声道说话时长相近（共 {total_s:.1f} 秒中"
        "分别为 {speech_s:.1f} 秒和 {other_s:.1f} 秒）",
    ),
    "most_not_first": (
        "channel {c} speaks most ({speech_s:.1f} s of {total_s:.1f} s) though channel {e} speaks "
        "first ({first_s:.1f} s)",
        "第 {c} 声道说话最多（共 {total_s:.1f} 秒中说了 {speech_s:.1f} 秒），但第 {e} 声道先开口"
        "（{first_s:.1f} 秒）",
    ),
}
ReasonPart = tuple[str, Mapping[str, Any]]  # a CHANNEL_REASONS code and its params
_CALLER_VOICE = (
    "Mono recording, two voices told apart: the caller is taken to be the one speaking "
    "{s:.0f} s in {n} turn(s), first at {t}",
    "单声道录音，已区分两个声音：来电方判为说话 {s:.0f} 秒、共 {n} 段、首次在 {t} 的那一方",
)
_TONES = (
    "Telephone tones (ringing, a busy tone or beeps) for {s:.1f} s, first at {t}, are nobody's "
    "voice and were left out of the analysis",
    "电话信号音（回铃音、忙音或提示音）共 {s:.1f} 秒、首次在 {t}，不是任何人的声音，未计入分析",
)
_RAISED = (
    "The recording is very quiet: it was raised by {g:.0f} dB before the analysis",
    "录音音量很低：分析前已将其提高 {g:.0f} 分贝",
)
_HUM = (
    "The recording carries a {h:.0f} Hz mains hum: it was filtered out before the analysis",
    "录音里有 {h:.0f} 赫兹的电源交流声：分析前已将其滤除",
)
_LEANS_ROBOT = ("leans robot", "倾向机器人")
_LEANS_PERSON = ("leans live person", "倾向真人")
_LISTEN = ("listen before reporting", "举报前请先听录音")


def _pick(pair: tuple[str, str], lang: Lang) -> str:
    return pair[0] if lang == "en" else pair[1]


def format_probability(probability: float) -> str:
    """A probability for people: ``"37 %"``, ``">99 %"``, ``"<1 %"``; never 100 % or 0 %.

    A model's probability is never certain, so the ends are shown as bounds (issue 14).
    """
    percent = round(100.0 * probability)
    if percent >= 100:
        return ">99 %"
    if percent <= 0:
        return "<1 %"
    return f"{percent} %"


def format_threshold_percent(threshold: float) -> str:
    """A decision threshold for people, to 0.1 %: ``"95.6 %"``, ``"2.3 %"``, ``"50 %"``.

    Finer than :func:`format_probability`, so that a probability and the edge it fell short of
    never read alike ("2 %, cannot tell from 2 %").
    """
    return f"{100.0 * threshold:.1f}".removesuffix(".0") + " %"


def format_robot_probability(verdict: Verdict) -> str:
    """The verdict's robot probability for people, on the right side of its thresholds.

    :func:`format_probability`, except within one point of the robot threshold or the
    uncertain band's edge (multiples of 0.1 %), where it is floored to 0.1 % so that it never
    reads as above an edge it is below ("2 %" beside "cannot tell from 2.3 %").
    """
    p = verdict.robot_probability
    cuts = (verdict.threshold, verdict.person_threshold)
    if any(c is not None and abs(p - c) < 0.01 for c in cuts):
        return f"{math.floor(1000.0 * p + 1e-9) / 10:.1f} %"
    return format_probability(p)


def format_clock(seconds: float) -> str:
    """``83.25`` -> ``"1:23.2"`` (minutes:seconds, one decimal)."""
    minutes, rest = divmod(max(0.0, seconds), 60.0)
    if round(rest, 1) >= 60.0:
        minutes, rest = minutes + 1, 0.0
    return f"{int(minutes)}:{rest:04.1f}"


class _Formatter(string.Formatter):
    def __init__(self, lang: Lang) -> None:
        super().__init__()
        self.lang = lang

    def format_field(self, value: Any, format_spec: str) -> str:
        zh = self.lang == "zh"
        if format_spec == "pct":
            return format_probability(float(value))
        if format_spec == "clock":
            return format_clock(float(value))
        if format_spec == "quotes":
            phrases = [value] if isinstance(value, str) else list(value)
            return ("、" if zh else ", ").join(f"\u201c{p}\u201d" for p in phrases)
        if format_spec == "unit":
            return _pick(_UNITS.get(str(value), (str(value), str(value))), self.lang)
        if format_spec == "when":
            return _pick(_WHEN.get(str(value), (str(value), str(value))), self.lang)
        if format_spec == "kinds":
            kinds = [value] if isinstance(value, str) else list(value)
            names = [_pick(PERSONAL_DATA.get(k, (k, k)), self.lang) for k in kinds]
            return ("、" if zh else ", ").join(names)
        return str(super().format_field(value, format_spec))


def render(code: str, params: Mapping[str, Any], lang: Lang) -> str:
    """The sentence of message ``code`` with ``params``, in ``lang``.

    Raises
    ------
    KeyError
        Unknown code, or a parameter the message needs is missing.
    """
    template = _pick(CATALOGUE[code], lang)
    sentence = _Formatter(lang).vformat(template, (), params)
    if TURN_TAKING_CAP_PARAM in params:
        sentence += ("" if lang == "zh" else " ") + _pick(TURN_TAKING_NOTE, lang)
    return sentence


def make_evidence(
    source: EvidenceSource,
    name: str,
    *,
    value: float,
    weight: float,
    code: str,
    params: Mapping[str, Param],
    span_s: tuple[float, float] | None = None,
) -> Evidence:
    """An :class:`Evidence` with its sentences rendered from the catalogue in both languages.

    Parameters
    ----------
    source, name, value, weight, span_s
        As in :class:`~pipeline.types.Evidence`.
    code : str
        Message code in :data:`CATALOGUE`.
    params : mapping of str to str, float or tuple of str
        The message's parameters and the technical figures the sentence leaves out; stored
        sorted by name in ``Evidence.params``.
    """
    from pipeline.types import Evidence

    return Evidence(
        source=source,
        name=name,
        value=float(value),
        weight=weight,
        detail=render(code, params, "en"),
        span_s=span_s,
        code=code,
        params=tuple(sorted(params.items())),
        detail_zh=render(code, params, "zh"),
    )


def evidence_sentence(evidence: Evidence, lang: Lang) -> str:
    """The evidence's sentence in ``lang``: rendered from its code, else the stored one.

    A verdict stored before the catalogue existed has no ``code`` and no ``detail_zh``; it
    reads its English ``detail`` in both languages.
    """
    if evidence.code in CATALOGUE:
        try:
            return render(evidence.code, dict(evidence.params), lang)
        except (KeyError, ValueError, IndexError):
            pass  # params of another catalogue version: the stored sentences still hold
    if lang == "zh" and evidence.detail_zh:
        return evidence.detail_zh
    return evidence.detail


def evidence_title(name: str, lang: Lang) -> str:
    """The title of a reason, e.g. ``"Digital silence (s)"``; unknown cues get their name."""
    fallback = name.replace("_", " ").capitalize()
    return _pick(TITLES.get(name, (fallback, fallback)), lang)


def topic_name(topic: str, lang: Lang) -> str:
    """A short topic name for the headline, e.g. ``"loan"`` / ``"贷款"``."""
    return _pick(TOPICS.get(topic, (topic, topic)), lang)


def caller_text(verdict: Verdict, lang: Lang) -> str:
    """Who called: ``"Electronic sales robot"`` (a robot that pitched), ``"Robot"``,
    ``"Live person"``, or, in the uncertain band, ``"Cannot tell whether a robot or a live
    person called (leans robot, 63 %)"`` (the percentage: how likely the side it leans to)."""
    from pipeline.types import Label

    if verdict.caller_certainty == "uncertain":
        p = verdict.robot_probability
        lean = _LEANS_ROBOT if p >= 0.5 else _LEANS_PERSON
        shown = format_probability(p if p >= 0.5 else 1.0 - p)
        return _pick(_WHO_UNCERTAIN, lang).format(lean=_pick(lean, lang), p=shown)
    if verdict.label is Label.ROBOT:
        return _pick(_WHO_ROBOT_SELLING if verdict.sales_pitch_heard else _WHO_ROBOT, lang)
    return _pick(_WHO_PERSON, lang)


def channel_reason(*parts: ReasonPart) -> tuple[str, str]:
    """(English, Chinese) of a caller-channel reason made of :data:`CHANNEL_REASONS` pieces."""
    en, zh = (
        "".join(_pick(CHANNEL_REASONS[code], lang).format(**params) for code, params in parts)
        for lang in ("en", "zh")
    )
    return en, zh


def caller_side(verdict: Verdict, lang: Lang) -> str:
    """Which part of the recording the analysis heard as the caller: the channel of a stereo
    call (and why), or the voice a mono recording was split into (its speech time, turns and
    first turn); "" for a mono recording of one voice (all of it is the caller's)."""
    info = verdict.audio
    if info.channels > 1:  # verdicts before schema 5 have the reason in English only
        why = (lang == "zh" and info.caller_channel_reason_zh) or info.caller_channel_reason
        return _pick(_CALLER_CHANNEL, lang).format(c=info.caller_channel, why=why)
    turns = verdict.caller_turns
    if not turns:
        return ""
    spoken = sum(end - start for start, end in turns)
    return _pick(_CALLER_VOICE, lang).format(s=spoken, n=len(turns), t=format_clock(turns[0][0]))


def tones_note(verdict: Verdict, lang: Lang) -> str:
    """The signalling tones on the caller's channel that the analysis left out (how long, and
    the first); "" when there were none."""
    if not verdict.tones:
        return ""
    heard = sum(end - start for start, end in verdict.tones)
    return _pick(_TONES, lang).format(s=heard, t=format_clock(verdict.tones[0][0]))


def level_note(verdict: Verdict, lang: Lang) -> str:
    """That a very quiet recording was raised before the analysis, and by how much; "" when
    it was analysed at its recorded level."""
    gain_db = verdict.audio.gain_db
    return _pick(_RAISED, lang).format(g=gain_db) if gain_db > 0.0 else ""


def hum_note(verdict: Verdict, lang: Lang) -> str:
    """That a mains hum was filtered out of the recording before the analysis; "" when none
    was."""
    hum_hz = verdict.audio.hum_hz
    return _pick(_HUM, lang).format(h=hum_hz) if hum_hz > 0.0 else ""


def queue_note(verdict: Verdict, lang: Lang) -> str:
    """What the analysis set aside as played by the called line (its recorded menu, a queue
    announcement, hold music: ``pipeline/queue.py``), as its reasons say it; "" when nothing."""
    return " ".join(
        evidence_sentence(e, lang)
        for e in verdict.evidence
        if e.name in ("line_menu", "queue_announcement", "hold_music")
    )


def recording_notes(verdict: Verdict, lang: Lang) -> list[str]:
    """The sentences about the recording itself that a summary prints under the verdict:
    :func:`level_note`, :func:`hum_note`, :func:`caller_side`, :func:`tones_note` and
    :func:`queue_note`, those that have something to say."""
    notes = (
        level_note(verdict, lang),
        hum_note(verdict, lang),
        caller_side(verdict, lang),
        tones_note(verdict, lang),
        queue_note(verdict, lang),
    )
    return [note for note in notes if note]


def call_text(verdict: Verdict, lang: Lang) -> str:
    """What the call was: ``"sales pitch (topic: loan)"``, ``"no sales pitch heard"``, ..."""
    if verdict.sales_pitch_heard:
        if verdict.topic in TOPICS:
            return _pick(_PITCH_TOPIC, lang).format(topic=topic_name(verdict.topic, lang))
        return _pick(_PITCH, lang)
    return _pick(_TOO_LITTLE if verdict.too_little_said else _NO_PITCH, lang)


def headline(verdict: Verdict, lang: Lang) -> str:
    """The verdict in one line, both questions apart (issue 13).

    Examples: ``"Electronic sales robot – sales pitch (topic: loan)"``, ``"Robot – no sales
    pitch heard"``, ``"Live person – no sales pitch heard"``, ``"真人，推销（内容：保险）"``; in
    the uncertain band ``"Cannot tell whether a robot or a live person called (leans robot,
    63 %) – sales pitch (topic: loan) – listen before reporting"``.
    """
    who, what = caller_text(verdict, lang), call_text(verdict, lang)
    if lang == "en":
        what = what[:1].lower() + what[1:]
    parts = [who, what]
    if verdict.caller_certainty == "uncertain":
        parts.append(_pick(_LISTEN, lang))
    return _pick(_SEPARATOR, lang).join(parts)
