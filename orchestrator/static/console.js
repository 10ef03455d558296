// The Charla console: a WhatsApp-like chat over the real webhook path (see orchestrator/console.py).
"use strict";

const $ = (sel) => document.querySelector(sel);
// readEarly: ids Charla marked read before the POST that sent them answered (the bubble has no id yet).
const state = {learner: null, name: null, source: null, recorder: null, bubbles: new Map(), unseen: [],
  readEarly: new Set()};

async function api(path, body, form) {
  const init = body === undefined ? {} : {method: "POST", body: form ? body : JSON.stringify(body),
    headers: form ? {} : {"content-type": "application/json"}};
  const r = await fetch(path, init);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const detail = Array.isArray(data.detail) ? data.detail.map((d) => d.msg).join("; ") : data.detail;
    throw new Error(data.error || detail || `${r.status} ${r.statusText}`);
  }
  return data;
}

function notice(text, bad) {
  const el = $("#notice");
  el.textContent = text;
  el.className = "notice" + (bad ? " bad" : "");
}

function linkify(parent, text) {
  const parts = text.split(/(https?:\/\/[^\s]+)/g);
  for (const part of parts) {
    if (/^https?:\/\//.test(part)) {
      const a = document.createElement("a");
      a.href = part; a.textContent = part; a.target = "_blank"; a.rel = "noopener";
      parent.append(a);
    } else if (part) {
      parent.append(document.createTextNode(part));
    }
  }
}

// WhatsApp's formatting: ```monospace```, *bold*, _italic_, ~strikethrough~ (markers next to the words they wrap),
// built as DOM nodes (never innerHTML).
const FORMAT = /```([\s\S]+?)```|(?<![\w*])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?!\w)|(?<![\w_])_(?=[^\s_])([^_\n]*?[^\s_])_(?!\w)|(?<![\w~])~(?=[^\s~])([^~\n]*?[^\s~])~(?!\w)/g;
const FORMAT_TAGS = ["code", "strong", "em", "del"];

function formatted(parent, text) {
  let last = 0;
  for (const match of text.matchAll(FORMAT)) {
    linkify(parent, text.slice(last, match.index));
    const group = match.slice(1).findIndex((g) => g !== undefined);
    const el = document.createElement(FORMAT_TAGS[group]);
    if (group === 0) linkify(el, match[1]);
    else formatted(el, match[group + 1]);  // WhatsApp nests them: _say *stop* to end_
    parent.append(el);
    last = match.index + match[0].length;
  }
  linkify(parent, text.slice(last));
}

// A voice note's words are not shown, as on a phone (a dictation's sentence is the exercise): a transcript to open.
function transcript(parent, text) {
  const box = document.createElement("details");
  box.className = "transcript";
  const summary = document.createElement("summary");
  summary.textContent = "Transcript";
  const words = document.createElement("div");
  formatted(words, text);
  box.append(summary, words);
  parent.append(box);
}

const TICKS = {pending: "🕓", delivered: "✓✓", read: "✓✓", answered: "✓✓", received: "✓✓", failed: "⚠"};

function setTicks(bubble, status) {
  const el = bubble.querySelector(".ticks");
  if (!el) return;
  el.textContent = TICKS[status] || "✓";
  el.dataset.status = status;
  el.classList.toggle("read", status === "read" || status === "answered");
}

function bubble(m) {
  const el = document.createElement("div");
  el.className = `bubble ${m.direction}` + (m.kind === "voice" || m.kind === "audio" ? " voice" : "");
  if (m.id) { el.dataset.id = m.id; state.bubbles.set(m.id, el); }
  const body = document.createElement("div");
  body.className = "body";
  if (m.audio) {
    const audio = document.createElement("audio");
    audio.controls = true; audio.preload = "auto"; audio.src = `/media/${m.audio}.ogg`;
    audio.addEventListener("play", () => m.id && seen(m.id, "played"), {once: true});
    el.append(audio);
  }
  if (m.document) {  // a data export ("send me my data"): a download link, like WhatsApp's file bubble
    const file = document.createElement("a");
    file.className = "document"; const name = m.filename || "charla-data.json";
    file.href = `/media/${m.document}.${name.split(".").pop()}`; file.download = name;
    file.textContent = `📄 ${name}`;
    el.append(file);
  }
  if (m.image) {  // a progress chart: the picture, as WhatsApp shows it
    const picture = document.createElement("img");
    picture.className = "image"; picture.src = `/media/${m.image}.png`; picture.alt = "chart";
    picture.style.maxWidth = "100%";
    el.append(picture);
  }
  if (m.kind === "audio" && m.direction === "in" && !m.text) body.textContent = "🎤 voice note";
  else if (m.kind === "voice" && m.direction === "out") {
    if (!m.audio) body.append("🔊 voice note");
    if (m.text) transcript(body, m.text);
  } else formatted(body, (m.kind === "document" && !m.document ? "📄 " : "") + (m.text || ""));
  el.append(body);
  if (m.choices && m.choices.length) el.append(choices(m));
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = new Date(m.at || Date.now()).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
  if (m.direction === "in") {
    const ticks = document.createElement("span");
    ticks.className = "ticks";
    meta.append(" ", ticks);
  }
  el.append(meta);
  if (m.direction === "in") setTicks(el, m.status || "pending");
  $("#messages").append(el);
  el.scrollIntoView({block: "end"});
  return el;
}

function choices(m) {
  const box = document.createElement("div");
  const asButtons = m.choices.length <= 3 && m.choices.every((c) => c.title.length <= 20);
  box.className = asButtons ? "choices buttons" : "choices list";
  const tap = async (c, row) => {
    box.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    const mine = bubble({direction: "in", kind: "interactive", text: c.title});
    try {
      const sent = await api("/console/api/choose", {learner: state.learner, name: state.name, id: c.id,
        title: c.title, context: m.id || null, row});
      adopt(mine, sent);
    } catch (e) { setTicks(mine, "failed"); notice(e.message, true); }
  };
  if (!asButtons) {
    const open = document.createElement("button");
    open.type = "button"; open.className = "list-open"; open.textContent = "☰ " + (m.choices_button || "Options");
    const rows = document.createElement("div");
    rows.className = "rows"; rows.hidden = true;
    open.addEventListener("click", () => { rows.hidden = !rows.hidden; });
    for (const c of m.choices) {
      const b = document.createElement("button");
      b.type = "button"; b.className = "choice row"; b.textContent = c.title; b.title = c.description || "";
      b.addEventListener("click", () => tap(c, true));
      rows.append(b);
    }
    box.append(open, rows);
  } else {
    for (const c of m.choices) {
      const b = document.createElement("button");
      b.type = "button"; b.className = "choice"; b.textContent = c.title;
      b.addEventListener("click", () => tap(c, false));
      box.append(b);
    }
  }
  return box;
}

function adopt(el, sent) {
  el.dataset.id = sent.message_id;
  state.bubbles.set(sent.message_id, el);
  setTicks(el, state.readEarly.delete(sent.message_id) ? "read" : "delivered");
}

async function seen(id, status) {
  try { await api("/console/api/status", {learner: state.learner, message_id: id, status}); }
  catch (e) { console.warn("status not sent", e); }
}

function acknowledge(id) {
  seen(id, "delivered");
  if (document.visibilityState === "visible") seen(id, "read");
  else state.unseen.push(id);
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState !== "visible") return;
  for (const id of state.unseen.splice(0)) seen(id, "read");
});

function onEvent(event) {
  const data = JSON.parse(event.data);
  if (data.type === "outbound.read") {
    const el = state.bubbles.get(data.message_id);
    if (el) setTicks(el, "read");
    else state.readEarly.add(data.message_id);
    $("#typing").hidden = data.typing === false;
  } else if (data.type === "outbound.message") {
    $("#typing").hidden = true;
    bubble({direction: "out", id: data.id, kind: data.kind, text: data.text, choices: data.choices,
      choices_button: data.choices_button, audio: data.audio, document: data.document, filename: data.filename,
      image: data.image, at: data.at});
    acknowledge(data.id);
  }
}

async function select(handle, name) {
  if (state.source) state.source.close();
  state.learner = handle; state.name = name || handle; state.bubbles.clear(); state.readEarly.clear();
  localStorage.setItem("charla.learner", JSON.stringify({handle, name}));
  document.body.dataset.ready = "";
  $("#who").textContent = `${state.name} (${handle})`;
  $("#messages").replaceChildren();
  for (const el of document.querySelectorAll("#composer [disabled]")) el.disabled = false;
  document.querySelectorAll("#learner-list li").forEach((li) => li.classList.toggle("active", li.dataset.handle === handle));
  try {
    for (const m of await api(`/console/api/history?learner=${encodeURIComponent(handle)}`)) bubble(m);
  } catch (e) { notice(e.message, true); }
  const source = new EventSource(`/console/api/events?learner=${encodeURIComponent(handle)}`);
  source.addEventListener("ready", () => { document.body.dataset.ready = handle; });
  source.addEventListener("charla", onEvent);
  source.onerror = () => notice("Live connection lost; reconnecting…", true);
  source.onopen = () => notice("");
  state.source = source;
  $("#text").focus();
}

async function learners() {
  const list = $("#learner-list");
  list.replaceChildren();
  for (const l of await api("/console/api/learners")) {
    const li = document.createElement("li");
    li.dataset.handle = l.handle;
    li.textContent = l.name ? `${l.name} (${l.handle})` : l.handle;
    li.addEventListener("click", () => select(l.handle, l.name));
    list.append(li);
  }
}

async function sendText(text) {
  const mine = bubble({direction: "in", kind: "text", text});
  try { adopt(mine, await api("/console/api/text", {learner: state.learner, name: state.name, text})); }
  catch (e) { setTicks(mine, "failed"); notice(e.message, true); }
}

async function sendAudio(blob, filename) {
  const mine = bubble({direction: "in", kind: "audio", text: `🎤 ${filename}`});
  const form = new FormData();
  form.append("learner", state.learner);
  form.append("name", state.name);
  form.append("file", blob, filename);
  try { adopt(mine, await api("/console/api/voice", form, true)); }
  catch (e) { setTicks(mine, "failed"); notice(e.message, true); }
}

async function toggleRecording() {
  const button = $("#record");
  if (state.recorder) { state.recorder.stop(); return; }
  let stream;
  try { stream = await navigator.mediaDevices.getUserMedia({audio: true}); }
  catch (e) { notice("No microphone: " + e.message + ". Attach an audio file with 📎 instead.", true); return; }
  const recorder = new MediaRecorder(stream);
  const chunks = [];
  const started = Date.now();
  const timer = setInterval(() => {
    button.dataset.seconds = String(Math.floor((Date.now() - started) / 1000));
    button.textContent = `⏹ ${button.dataset.seconds}s`;
  }, 250);
  recorder.addEventListener("dataavailable", (e) => chunks.push(e.data));
  recorder.addEventListener("stop", () => {
    clearInterval(timer);
    stream.getTracks().forEach((t) => t.stop());
    state.recorder = null;
    button.textContent = "🎤"; button.classList.remove("recording"); delete button.dataset.seconds;
    const type = (recorder.mimeType || "audio/webm").split(";")[0];
    sendAudio(new Blob(chunks, {type}), type.includes("ogg") ? "voice.ogg" : "voice.webm");
  });
  recorder.start();
  state.recorder = recorder;
  button.classList.add("recording");
  button.dataset.seconds = "0";
  button.textContent = "⏹ 0s";
}

async function refreshInfo() {
  try {
    const info = await api("/console/api/info");
    const offset = info.clock_offset_s;
    $("#clock").textContent = offset ? `🕒 ${new Date(info.now).toLocaleString()} (+${(offset / 3600).toFixed(1)} h)` : "";
  } catch (e) { console.warn(e); }
}

$("#composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("#text").value.trim();
  if (!text || !state.learner) return;
  $("#text").value = "";
  sendText(text);
});
$("#record").addEventListener("click", toggleRecording);
$("#file").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (file) sendAudio(file, file.name);
  e.target.value = "";
});
$("#new-learner").addEventListener("submit", (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  select(String(form.get("handle")), String(form.get("name") || "") || null);
  e.target.reset();
});
$("#pay").addEventListener("click", async () => {
  if (!state.learner) return notice("Pick a learner first", true);
  try { await api("/console/api/pay", {learner: state.learner}); notice("Payment completed (simulated) ✓"); }
  catch (e) { notice(e.message, true); }
});
$("#next-practice").addEventListener("click", async () => {
  if (!state.learner) return notice("Pick a learner first", true);
  try {
    const moved = await api("/console/api/clock", {learner: state.learner});
    notice(`Clock moved to ${new Date(moved.now).toLocaleString()}: the scheduler runs now.`);
    refreshInfo();
  } catch (e) { notice(e.message, true); }
});

learners().catch((e) => notice(e.message, true));
refreshInfo();
const saved = JSON.parse(localStorage.getItem("charla.learner") || "null");
if (saved && saved.handle) select(saved.handle, saved.name);
