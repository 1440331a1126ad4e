// Robocall detector page: upload, poll, show the verdict, history. Vanilla JS, no network but
// this server. Every sentence about a verdict comes from the server (the analysis's `display`,
// rendered by pipeline.messages in both languages); the page only picks the user's language.
"use strict";

const I18N = {
  en: {
    title: "Sales robot or human?",
    subtitle: "Drop a recording of a sales call. It is analysed on this server; nothing leaves it.",
    api_key: "API key", api_key_hint: "This server requires an API key.",
    drop: "Drop a recording here, or", choose: "choose a file",
    formats: "WAV, MP3, AMR, M4A, FLAC, OGG",
    details: "Call details (optional)", caller_number: "Caller number",
    callee_number: "Your number", call_time: "Call time ({zone})", language: "Language",
    auto: "automatic", lang_zh: "Mandarin", lang_en: "English",
    caller_channel: "Caller channel (stereo)", left: "left", right: "right",
    uploading: "Uploading… {pct}%", queued: "Waiting in the queue…",
    running: "Analysing the call…", done: "Done.", failed: "The analysis failed: {msg}",
    verdict: "Verdict", prob: "Robot probability", threshold: "(robot at {v} or more)", threshold_band: "(robot at {v} or more; cannot tell from {l})",
    disclaimer: "A statistical judgement from the recording, not proof.",
    reasons: "Why", up: "points to a robot", down: "points to a person", neutral: "measured, no effect",
    no_reasons: "No single cue stood out.", no_reasons_context: "No single cue stood out. Some measurements:",
    waveform: "Waveform, pitch and the parts that decided", legend_wave: "waveform",
    legend_pitch: "pitch (50–400 Hz)", legend_span: "decided the verdict",
    wave_unavailable: "This browser cannot decode the format; the deciding parts are shown on a timeline.",
    transcript: "Transcript", caller: "Caller", callee: "Callee",
    no_transcript: "No speech was transcribed.",
    edit_details: "Call details", save: "Save details", saved: "Saved.",
    saved_rerun: "Saved. The call is analysed again in the new language.",
    download_json: "Download JSON", download_pack: "Evidence pack (zip)", again: "Analyse another call",
    delete: "Delete", confirm_delete: "Delete this analysis and its recording?",
    history: "Your analyses", history_note: "Kept for 30 days, then deleted.",
    filter_all: "all", filter_robot: "robots", filter_human: "live persons",
    more: "Show more", no_history: "No analyses yet.", robot_share: "robot {p}",
    status_queued: "queued", status_running: "analysing", status_failed: "failed",
    err_not_audio: "This file is not a recording we can read.",
    err_audio_too_large: "The file is too large.",
    err_audio_too_long: "The recording is too long.",
    err_audio_too_short: "The recording is too short to analyse.",
    err_empty_audio: "The recording is empty, too short or has no speech.",
    err_corrupt_audio: "The recording is damaged and cannot be decoded.",
    err_unsupported_audio: "This kind of recording is not supported.",
    err_queue_full: "The server is busy. Try again in {s} s.",
    err_rate_limited: "Too many uploads. Try again in {s} s.",
    err_missing_api_key: "Enter an API key to use this server.",
    err_invalid_api_key: "The API key is not valid.",
    err_model_unavailable: "The models are not loaded on this server.",
    err_not_found: "This analysis does not exist any more (deleted, or older than 30 days).",
    err_network: "Network error: the server did not answer.",
    err_other: "Error: {msg}",
  },
  zh: {
    title: "电销机器人还是真人？",
    subtitle: "拖入一段销售电话录音。分析在本服务器上完成，录音不会外传。",
    api_key: "API 密钥", api_key_hint: "此服务器需要 API 密钥。",
    drop: "将录音拖到这里，或", choose: "选择文件",
    formats: "支持 WAV、MP3、AMR、M4A、FLAC、OGG",
    details: "通话信息（可选）", caller_number: "来电号码", callee_number: "本机号码",
    call_time: "通话时间（{zone}）", language: "语言", auto: "自动", lang_zh: "普通话", lang_en: "英语",
    caller_channel: "来电方声道（立体声）", left: "左", right: "右",
    uploading: "正在上传… {pct}%", queued: "排队等待中…", running: "正在分析通话…",
    done: "分析完成。", failed: "分析失败：{msg}",
    verdict: "判断结果", prob: "机器人概率", threshold: "（{v} 及以上判为机器人）", threshold_band: "（{v} 及以上判为机器人；{l} 至 {v} 之间无法判断）",
    disclaimer: "这是基于录音的统计判断，并非证据。",
    reasons: "判断依据", up: "倾向机器人", down: "倾向真人", neutral: "已测量，不影响判断",
    no_reasons: "没有特别突出的线索。", no_reasons_context: "没有特别突出的线索。部分测量值：",
    waveform: "波形、音高与起决定作用的片段", legend_wave: "波形", legend_pitch: "音高（50–400 Hz）",
    legend_span: "决定判断的片段",
    wave_unavailable: "浏览器无法解码此格式，仅在时间轴上显示起决定作用的片段。",
    transcript: "通话文本", caller: "来电方", callee: "接听方",
    no_transcript: "未识别到语音。",
    edit_details: "通话信息", save: "保存", saved: "已保存。",
    saved_rerun: "已保存，正在按新的语言重新分析。",
    download_json: "下载 JSON", download_pack: "证据包（zip）", again: "分析另一段录音",
    delete: "删除", confirm_delete: "删除这条分析及其录音？",
    history: "我的分析记录", history_note: "保存 30 天后自动删除。",
    filter_all: "全部", filter_robot: "机器人", filter_human: "真人",
    more: "显示更多", no_history: "还没有分析记录。", robot_share: "机器人概率 {p}",
    status_queued: "排队中", status_running: "分析中", status_failed: "失败",
    err_not_audio: "这不是可识别的录音文件。", err_audio_too_large: "文件过大。",
    err_audio_too_long: "录音过长。", err_audio_too_short: "录音太短，无法分析。",
    err_empty_audio: "录音为空、太短或没有语音。",
    err_corrupt_audio: "录音文件已损坏，无法解码。", err_unsupported_audio: "不支持这种录音。",
    err_queue_full: "服务器繁忙，请 {s} 秒后重试。", err_rate_limited: "上传过于频繁，请 {s} 秒后重试。",
    err_missing_api_key: "请输入 API 密钥。", err_invalid_api_key: "API 密钥无效。",
    err_model_unavailable: "服务器未加载模型。",
    err_not_found: "这条分析已不存在（已删除，或已超过 30 天）。",
    err_network: "网络错误：服务器没有响应。",
    err_other: "错误：{msg}",
  },
};

const $ = (id) => document.getElementById(id);
const state = { lang: "en", analysis: null, decoding: null, samples: null, stopAt: null, timer: null,
  historyOffset: 0 };
const ANALYSIS_HASH = /^#\/analyses\/([0-9a-f]{32})$/;

function pickLanguage() {
  const saved = localStorage.getItem("robocall.lang");
  if (saved && I18N[saved]) return saved;
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  return String(langs[0]).toLowerCase().startsWith("zh") ? "zh" : "en";
}

function t(key, vars) {
  let s = (I18N[state.lang] && I18N[state.lang][key]) || I18N.en[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace("{" + k + "}", String(v));
  return s;
}

// The browser's UTC offset, e.g. "+08:00": a call time is sent with its zone.
function zoneOffset(date) {
  const minutes = -date.getTimezoneOffset();
  const sign = minutes >= 0 ? "+" : "-";
  const abs = Math.abs(minutes);
  return sign + String(Math.floor(abs / 60)).padStart(2, "0") + ":" + String(abs % 60).padStart(2, "0");
}

function callTimeValue(input) {
  const when = input.value;
  if (!when) return "";
  return (when.length === 16 ? when + ":00" : when) + zoneOffset(new Date(when));
}

function applyLanguage() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  const zone = "UTC" + zoneOffset(new Date());
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n, { zone }); });
  $("lang-switch").textContent = state.lang === "zh" ? "English" : "中文";
  if (state.analysis && state.analysis.status === "done") renderResult(state.analysis);
  if (!$("history").hidden) loadHistory(false); // its lines are in the page's language
}

function apiHeaders() {
  const key = $("api-key").value.trim();
  return key ? { "X-API-Key": key } : {};
}

function errorText(body, status) {
  const code = body && body.error;
  if (!status) return t("err_network");
  if (code && I18N.en["err_" + code]) return t("err_" + code, { s: body.retry_after || "…" });
  return t("err_other", { msg: (body && body.message) || status });
}

function showError(body, status) {
  const code = body && body.error;
  if (code === "missing_api_key" || code === "invalid_api_key") {
    $("key-row").hidden = false;
    $("api-key").focus();
  }
  $("error").textContent = errorText(body, status);
  $("error").hidden = false;
  $("progress-box").hidden = true;
}

function setStatus(text, pct) {
  $("progress-box").hidden = false;
  $("status").textContent = text;
  if (pct === null) $("progress").removeAttribute("value");
  else $("progress").value = pct;
}

// -- upload and polling ----------------------------------------------------------------

function upload(file) {
  state.samples = null;
  $("error").hidden = true;
  const form = new FormData();
  form.append("file", file, file.name);
  const fields = { caller_number: "caller-number", callee_number: "callee-number",
    language: "language", caller_channel: "caller-channel" };
  for (const [name, id] of Object.entries(fields)) {
    const v = $(id).value.trim();
    if (v) form.append(name, v);
  }
  const when = callTimeValue($("call-time"));
  if (when) form.append("call_time", when);

  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/analyses");
  for (const [k, v] of Object.entries(apiHeaders())) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) {
      const pct = Math.round((100 * e.loaded) / e.total);
      setStatus(t("uploading", { pct }), pct);
    }
  };
  xhr.onerror = () => showError(null, 0);
  xhr.onload = () => {
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch (_) { body = null; }
    if (xhr.status === 200 || xhr.status === 202) {
      saveKey();
      track(body);
      location.hash = "#/analyses/" + body.id; // its own address: survives a reload
    } else {
      if (body) body.retry_after = xhr.getResponseHeader("Retry-After");
      showError(body, xhr.status);
    }
  };
  setStatus(t("uploading", { pct: 0 }), 0);
  xhr.send(form);
  // Decode the local copy for the waveform while the server works (no second download).
  state.decoding = file.size < 64 * 1024 * 1024 ? file.arrayBuffer().then(decodeBuffer) : null;
  if (state.decoding) state.decoding.catch(() => null);
}

function saveKey() {
  const key = $("api-key").value.trim();
  if (key) sessionStorage.setItem("robocall.key", key);
}

function track(analysis) {
  state.analysis = analysis;
  if (analysis.status === "done") return showResult(analysis);
  if (analysis.status === "failed") return failed(analysis);
  setStatus(t(analysis.status === "running" ? "running" : "queued"), null);
  clearTimeout(state.timer);
  state.timer = setTimeout(poll, 600);
}

async function poll() {
  const a = state.analysis;
  let resp;
  try {
    resp = await fetch(a.links.self, { headers: apiHeaders(), cache: "no-store" });
  } catch (_) {
    state.timer = setTimeout(poll, 2000);
    return;
  }
  const body = await resp.json().catch(() => null);
  if (!resp.ok) return showError(body, resp.status);
  if (state.analysis && state.analysis.id === body.id) track(body);
}

function failed(a) {
  showUploadView();
  const code = a.error && a.error.code;
  const msg = code && I18N.en["err_" + code] ? t("err_" + code, { s: "…" }) : (a.error ? a.error.message : "");
  $("error").textContent = t("failed", { msg });
  $("error").hidden = false;
  $("progress-box").hidden = true;
}

// -- addresses: #/analyses/{id} shows one result, anything else the upload page ---------------

async function route() {
  const m = location.hash.match(ANALYSIS_HASH);
  if (!m) {
    if (state.analysis) resetResult();
    showUploadView();
    loadHistory(false);
    return;
  }
  if (state.analysis && state.analysis.id === m[1]) return; // just uploaded: already tracking
  resetResult();
  $("error").hidden = true;
  let resp;
  try {
    resp = await fetch("/v1/analyses/" + m[1], { headers: apiHeaders(), cache: "no-store" });
  } catch (_) {
    return showError(null, 0);
  }
  const body = await resp.json().catch(() => null);
  if (!resp.ok) {
    showUploadView();
    return showError(body, resp.status);
  }
  track(body);
}

function showUploadView() {
  $("result-view").hidden = true;
  $("upload-view").hidden = false;
}

function resetResult() {
  clearTimeout(state.timer);
  state.analysis = null;
  state.decoding = null;
  state.samples = null;
  waveCache = null;
  $("file-input").value = "";
  $("player").removeAttribute("src");
  $("progress-box").hidden = true;
}

// -- history ------------------------------------------------------------------------------

const HISTORY_PAGE = 10;

async function loadHistory(more) {
  state.historyOffset = more ? state.historyOffset + HISTORY_PAGE : 0;
  const label = $("history-filter").value;
  const query = "?limit=" + HISTORY_PAGE + "&offset=" + state.historyOffset + (label ? "&label=" + label : "");
  let resp;
  try {
    resp = await fetch("/v1/analyses" + query, { headers: apiHeaders(), cache: "no-store" });
  } catch (_) {
    return;
  }
  const list = $("history-list");
  if (!resp.ok) {
    $("history").hidden = true; // e.g. no API key yet
    return;
  }
  const body = await resp.json();
  $("history").hidden = false;
  if (!more) list.replaceChildren();
  if (!body.total) list.append(Object.assign(document.createElement("li"), { className: "hint", textContent: t("no_history") }));
  for (const item of body.items) {
    const li = document.createElement("li");
    const a = Object.assign(document.createElement("a"), { href: "#/analyses/" + item.id });
    const when = Object.assign(document.createElement("span"), { className: "when",
      textContent: new Date(item.created_at).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB",
        { dateStyle: "medium", timeStyle: "short" }) });
    const name = Object.assign(document.createElement("span"), { className: "name", textContent: item.audio.name });
    const what = document.createElement("span");
    const certainty = item.caller_certainty || (item.label === "electronic_sales_robot" ? "robot" : item.label ? "person" : "");
    what.className = "what " + ({ robot: "robot", person: "human", uncertain: "uncertain" }[certainty] || "");
    what.textContent = item.headline
      ? item.headline[state.lang] + " · " + t("robot_share", { p: item.robot_probability })
      : t("status_" + item.status);
    a.append(when, name, what);
    li.append(a);
    list.append(li);
  }
  $("history-more").hidden = state.historyOffset + body.items.length >= body.total;
}

// -- result --------------------------------------------------------------------------------

function fmtTime(s) {
  const m = Math.floor(s / 60);
  const sec = s - 60 * m;
  return String(m).padStart(2, "0") + ":" + sec.toFixed(1).padStart(4, "0");
}

// The parts that drove the verdict: pipeline.highlights.highlight_spans, sent by the server.
function highlightSpans(analysis) {
  return analysis.display.highlights.map((h) => h.span_s);
}

async function showResult(analysis) {
  setStatus(t("done"), 100);
  $("progress-box").hidden = true;
  $("upload-view").hidden = true;
  $("result-view").hidden = false;
  fillDetails(analysis);
  renderResult(analysis);
  await setupAudio(analysis);
  drawWave();
}

function renderResult(analysis) {
  const v = analysis.verdict;
  const d = analysis.display;
  const lang = state.lang;
  const card = $("verdict-card");
  // robot, live person, or the band where the detector cannot tell (pipeline.types.Verdict)
  const certainty = d.caller_certainty;
  card.classList.toggle("robot", certainty === "robot");
  card.classList.toggle("human", certainty === "person");
  card.classList.toggle("uncertain", certainty === "uncertain");
  card.dataset.label = v.label;
  card.dataset.certainty = certainty;
  $("verdict-label").textContent = d.headline[lang];
  $("probability").textContent = d.robot_probability;
  const lower = v.person_threshold ?? v.threshold;
  $("threshold").textContent = lower < v.threshold
    ? t("threshold_band", { v: d.threshold, l: d.person_threshold })
    : t("threshold", { v: d.threshold });
  $("meter-fill").style.width = (100 * v.robot_probability).toFixed(1) + "%";
  $("meter-threshold").style.left = (100 * v.threshold).toFixed(1) + "%";
  $("meter-band").style.left = (100 * lower).toFixed(1) + "%";
  $("meter-band").style.width = (100 * (v.threshold - lower)).toFixed(1) + "%";
  const side = $("caller-side");
  side.textContent = d.caller_side ? d.caller_side[lang] : "";
  side.hidden = !d.caller_side;
  const tones = $("tones");
  tones.textContent = d.tones ? d.tones[lang] : "";
  tones.hidden = !d.tones;
  const queue = $("queue");
  queue.textContent = d.queue ? d.queue[lang] : "";
  queue.hidden = !d.queue;
  const warnings = $("warnings");
  warnings.replaceChildren(...(analysis.warnings || []).map((w) =>
    Object.assign(document.createElement("li"), { textContent: w.message[lang] })));
  warnings.hidden = !warnings.children.length;

  const reasons = $("reasons");
  reasons.replaceChildren();
  // Reasons come strongest first; cues with no weight are shown as context after them.
  const weighted = d.reasons.filter((r) => r.direction !== "neutral").slice(0, 5);
  const context = d.reasons.filter((r) => r.direction === "neutral").slice(0, Math.max(0, 3 - weighted.length));
  const note = $("reasons-note");
  note.hidden = weighted.length > 0;
  note.textContent = t(context.length ? "no_reasons_context" : "no_reasons");
  for (const r of weighted.concat(context)) {
    const li = document.createElement("li");
    li.append(document.createTextNode(r.sentence[lang]));
    const tag = document.createElement("span");
    const dir = r.direction === "robot" ? "up" : r.direction === "person" ? "down" : "neutral";
    tag.className = "tag " + dir;
    tag.textContent = t(dir);
    li.append(tag);
    if (r.span_s) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "link";
      b.textContent = "▶ " + fmtTime(r.span_s[0]) + "–" + fmtTime(r.span_s[1]);
      b.addEventListener("click", () => playSpan(r.span_s[0], r.span_s[1]));
      li.append(b);
    }
    reasons.append(li);
  }

  // Only the caller's lines that the highlights name are marked, never the callee's; on a mono
  // recording split into two voices `speakers` says which lines are the callee's.
  const marked = new Set(d.highlights.flatMap((h) => h.caller_segments));
  const lines = v.transcript.segments.map((s, i) => ({ who: d.speakers[i], marked: marked.has(i), ...s }));
  if (v.other_party_transcript) {
    for (const s of v.other_party_transcript.segments) lines.push({ who: "callee", marked: false, ...s });
  }
  lines.sort((a, b) => a.start_s - b.start_s);
  const list = $("transcript");
  list.replaceChildren();
  if (!lines.length) list.append(Object.assign(document.createElement("li"), { textContent: t("no_transcript") }));
  for (const line of lines) {
    const li = document.createElement("li");
    li.dataset.start = line.start_s;
    li.dataset.end = line.end_s;
    li.classList.toggle("suspicious", line.marked);
    li.classList.add(line.who);
    const b = document.createElement("button");
    b.type = "button";
    const ts = Object.assign(document.createElement("span"), { className: "ts",
      textContent: fmtTime(line.start_s) + "–" + fmtTime(line.end_s) });
    const who = Object.assign(document.createElement("span"), { className: "who", textContent: t(line.who) });
    const text = Object.assign(document.createElement("span"), { className: "text", textContent: line.text });
    b.append(ts, who, text);
    b.addEventListener("click", () => playSpan(line.start_s, line.end_s));
    li.append(b);
    list.append(li);
  }

  const link = $("download-json");
  if (link.href && link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([JSON.stringify(v, null, 2)], { type: "application/json" }));
  link.download = "robocall-" + analysis.id + ".json";
  $("download-pack").onclick = () => downloadPack(analysis);
}

// -- call details after the upload: shown, edited, saved with PATCH --------------------------

function fillDetails(analysis) {
  const m = analysis.metadata;
  $("edit-caller-number").value = m.caller_number || "";
  $("edit-callee-number").value = m.callee_number || "";
  // A stored time keeps its own zone on the server; the field shows its wall-clock time.
  $("edit-call-time").value = m.call_time && m.call_time.length >= 16 ? m.call_time.slice(0, 16) : "";
  $("edit-language").value = m.language || "";
  $("details-status").textContent = "";
}

async function saveDetails(e) {
  e.preventDefault();
  const a = state.analysis;
  const stored = a.metadata.call_time || "";
  const edited = $("edit-call-time").value;
  const patch = {
    caller_number: $("edit-caller-number").value.trim() || null,
    callee_number: $("edit-callee-number").value.trim() || null,
    language: $("edit-language").value || null,
  };
  if (edited !== stored.slice(0, 16)) patch.call_time = edited ? callTimeValue($("edit-call-time")) : null;
  const resp = await fetch(a.links.self, { method: "PATCH", cache: "no-store",
    headers: { "Content-Type": "application/json", ...apiHeaders() }, body: JSON.stringify(patch) });
  const body = await resp.json().catch(() => null);
  if (!resp.ok) {
    $("details-status").textContent = errorText(body, resp.status);
    $("details-status").className = "error";
    return;
  }
  $("details-status").className = "hint";
  if (body.status === "done") {
    state.analysis = body;
    $("details-status").textContent = t("saved");
    return;
  }
  $("details-status").textContent = t("saved_rerun");
  waveCache = null;
  track(body); // analysed again in the new language
}

async function deleteAnalysis() {
  const a = state.analysis;
  if (!a || !window.confirm(t("confirm_delete"))) return;
  const resp = await fetch(a.links.self, { method: "DELETE", headers: apiHeaders() });
  if (!resp.ok && resp.status !== 404) return showError(await resp.json().catch(() => null), resp.status);
  resetResult();
  location.hash = "#/";
}

// The signed evidence pack is built on request (POST), then saved like any download.
async function downloadPack(analysis) {
  const resp = await fetch(analysis.links.self + "/evidence?lang=" + state.lang, {
    method: "POST", headers: apiHeaders() });
  if (!resp.ok) return showError(await resp.json().catch(() => null), resp.status);
  const url = URL.createObjectURL(await resp.blob());
  const a = Object.assign(document.createElement("a"), { href: url, download: "evidence-" + analysis.id + ".zip" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function fetchDecoded(url, headers) {
  try {
    const resp = await fetch(url, { headers });
    if (!resp.ok) return null;
    const buf = await resp.arrayBuffer();
    const samples = await decodeBuffer(buf).catch(() => null);
    return { buf, samples };
  } catch (_) {
    return null;
  }
}

async function setupAudio(analysis) {
  const headers = apiHeaders();
  const keyed = Object.keys(headers).length > 0;
  let samples = null;
  try {
    samples = state.decoding ? await state.decoding : null;
  } catch (_) {
    samples = null;
  }
  let src = analysis.links.audio; // served with HTTP Range support: seeking streams
  let blob = null;
  if (!samples) {
    // Opened from its address (no local copy): the stored original; a format the browser
    // cannot decode (AMR): the server's WAV copy.
    let got = state.decoding === null ? await fetchDecoded(src, headers) : null;
    if (got && got.samples) {
      blob = new Blob([got.buf]);
    } else {
      src = analysis.links.audio + "?format=wav";
      got = await fetchDecoded(src, headers);
      if (got) blob = new Blob([got.buf], { type: "audio/wav" });
    }
    samples = got ? got.samples : null;
  }
  if (keyed && !blob) {
    const resp = await fetch(src, { headers });
    if (resp.ok) blob = await resp.blob();
  }
  if (keyed && blob) src = URL.createObjectURL(blob);
  if (!keyed || src.startsWith("blob:")) $("player").src = src;
  state.samples = samples;
}

function playSpan(start, end) {
  const player = $("player");
  state.stopAt = end;
  player.currentTime = start;
  player.play().catch(() => {});
}

function onTimeUpdate() {
  const player = $("player");
  const now = player.currentTime;
  if (state.stopAt !== null && now >= state.stopAt) {
    player.pause();
    state.stopAt = null;
  }
  document.querySelectorAll("#transcript li").forEach((li) => {
    li.classList.toggle("playing", !player.paused && now >= +li.dataset.start && now < +li.dataset.end);
  });
  drawWave();
}

// -- waveform and pitch (decoded in the browser, WebAudio) ----------------------------------

const DECODE_RATE_HZ = 8000;

async function decodeBuffer(buf) {
  const Ctx = window.OfflineAudioContext || window.webkitOfflineAudioContext;
  const ctx = new Ctx(1, DECODE_RATE_HZ, DECODE_RATE_HZ);
  const audio = await ctx.decodeAudioData(buf.slice(0)); // decoding detaches its input
  return { data: audio.getChannelData(0), rate: audio.sampleRate, duration: audio.duration };
}

function pitchAt(x, center, rate) {
  // Normalised autocorrelation over one 32 ms frame; 50-400 Hz; null when unvoiced.
  const n = Math.round(0.032 * rate);
  const start = Math.max(0, Math.round(center - n / 2));
  if (start + n + Math.ceil(rate / 50) >= x.length) return null;
  let energy = 0;
  for (let i = start; i < start + n; i++) energy += x[i] * x[i];
  if (energy / n < 1e-5) return null;
  const minLag = Math.floor(rate / 400);
  const maxLag = Math.ceil(rate / 50);
  const r = new Float32Array(maxLag + 2);
  let best = 0;
  for (let lag = minLag; lag <= maxLag + 1; lag++) {
    let num = 0;
    let e2 = 0;
    for (let i = start; i < start + n; i++) {
      num += x[i] * x[i + lag];
      e2 += x[i + lag] * x[i + lag];
    }
    r[lag] = num / Math.sqrt(energy * e2 + 1e-12);
    if (r[lag] > best) best = r[lag];
  }
  if (best < 0.6) return null;
  // The shortest lag that is a local peak close to the best avoids octave (sub-harmonic) errors.
  for (let lag = minLag + 1; lag <= maxLag; lag++) {
    if (r[lag] >= 0.9 * best && r[lag] >= r[lag - 1] && r[lag] >= r[lag + 1]) return rate / lag;
  }
  return null;
}

let waveCache = null;

function drawWave() {
  const canvas = $("wave");
  if (!state.analysis || !state.analysis.verdict || $("result-view").hidden) return;
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(200, Math.round(canvas.clientWidth * dpr));
  const h = Math.round(160 * dpr);
  const key = w + "x" + h + ":" + state.analysis.id + ":" + Boolean(state.samples);
  if (!waveCache || waveCache.key !== key) waveCache = { key, image: renderWave(w, h) };
  canvas.width = w;
  canvas.height = h;
  const g = canvas.getContext("2d");
  g.drawImage(waveCache.image, 0, 0);
  const player = $("player");
  const dur = durationOf();
  if (dur > 0 && player.currentTime > 0) {
    const x = (player.currentTime / dur) * w;
    g.fillStyle = "#1d2330";
    g.fillRect(x, 0, Math.max(1, dpr), h);
  }
}

function durationOf() {
  if (state.samples) return state.samples.duration;
  return state.analysis.verdict.audio.duration_s || 0;
}

function renderWave(w, h) {
  const off = document.createElement("canvas");
  off.width = w;
  off.height = h;
  const g = off.getContext("2d");
  const dur = durationOf();
  g.fillStyle = "#fbfbfd";
  g.fillRect(0, 0, w, h);
  if (dur > 0) {
    g.fillStyle = getComputedStyle(document.documentElement).getPropertyValue("--span") || "rgba(198,40,40,0.22)";
    for (const [a, b] of highlightSpans(state.analysis)) g.fillRect((a / dur) * w, 0, Math.max(2, ((b - a) / dur) * w), h);
  }
  const note = $("wave-note");
  if (!state.samples) {
    note.textContent = t("wave_unavailable");
    note.hidden = false;
    g.fillStyle = "#c9cfdb";
    g.fillRect(0, h / 2 - 1, w, 2);
    return off;
  }
  note.hidden = true;
  const { data, rate } = state.samples;
  const per = data.length / w;
  const mid = h / 2;
  g.fillStyle = "#9fb0cf";
  let peak = 1e-6;
  for (let i = 0; i < data.length; i++) peak = Math.max(peak, Math.abs(data[i]));
  const scale = (0.9 * mid) / peak;
  for (let x = 0; x < w; x++) {
    let lo = 0;
    let hi = 0;
    const end = Math.min(data.length, Math.floor((x + 1) * per));
    for (let i = Math.floor(x * per); i < end; i++) {
      if (data[i] < lo) lo = data[i];
      if (data[i] > hi) hi = data[i];
    }
    g.fillRect(x, mid - hi * scale, 1, Math.max(1, (hi - lo) * scale));
  }
  // Pitch: one estimate per ~3 device pixels, on a log scale 50-400 Hz.
  g.fillStyle = getComputedStyle(document.documentElement).getPropertyValue("--pitch") || "#e07b00";
  const step = 3;
  for (let x = 0; x < w; x += step) {
    const f0 = pitchAt(data, (x + step / 2) * per, rate);
    if (f0 === null) continue;
    const y = h - 4 - ((Math.log2(f0) - Math.log2(50)) / 3) * (h - 8);
    g.fillRect(x, y - 1.5, step, 3);
  }
  return off;
}

// -- wiring -------------------------------------------------------------------------------

function init() {
  state.lang = pickLanguage();
  const savedKey = sessionStorage.getItem("robocall.key");
  if (savedKey) { $("api-key").value = savedKey; $("key-row").hidden = false; }
  applyLanguage();
  $("lang-switch").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    localStorage.setItem("robocall.lang", state.lang);
    waveCache = null;
    applyLanguage();
    drawWave();
  });
  const zone = $("drop-zone");
  const input = $("file-input");
  $("choose").addEventListener("click", (e) => { e.stopPropagation(); input.click(); });
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
  input.addEventListener("change", () => { if (input.files.length) upload(input.files[0]); });
  for (const ev of ["dragenter", "dragover"]) {
    zone.addEventListener(ev, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    zone.addEventListener(ev, (e) => { e.preventDefault(); zone.classList.remove("over"); });
  }
  zone.addEventListener("drop", (e) => {
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) upload(f);
  });
  const player = $("player");
  player.addEventListener("timeupdate", onTimeUpdate);
  player.addEventListener("pause", onTimeUpdate);
  $("wave").addEventListener("click", (e) => {
    const dur = durationOf();
    const rect = e.currentTarget.getBoundingClientRect();
    if (dur > 0) playSpan(((e.clientX - rect.left) / rect.width) * dur, null);
  });
  window.addEventListener("resize", () => drawWave());
  $("again").addEventListener("click", () => { location.hash = "#/"; });
  $("delete").addEventListener("click", deleteAnalysis);
  $("details-form").addEventListener("submit", saveDetails);
  $("history-filter").addEventListener("change", () => loadHistory(false));
  $("history-more").addEventListener("click", () => loadHistory(true));
  window.addEventListener("hashchange", route);
  route();
}

document.addEventListener("DOMContentLoaded", init);
