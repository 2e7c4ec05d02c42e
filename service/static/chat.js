// speechqa chat page: the OpenAI-compatible endpoint streamed, citations shown in their paragraph.
// Plain browser JavaScript; no libraries, no network beyond this service.
"use strict";

const state = {
  docs: [],            // [{id, name}] from /v1/models
  selected: new Set(),  // doc ids to ask
  history: [],          // [{role, content}] sent with every question
  texts: new Map(),     // doc id -> {text, cps, lineStarts}
  busy: false,
};

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
};

// -- HTTP -----------------------------------------------------------------------------------
async function api(path, options = {}, retried = false) {
  const headers = { ...(options.headers || {}) };
  const key = localStorage.getItem("speechqa.apiKey");
  if (key) headers.Authorization = `Bearer ${key}`;
  if (options.body) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { ...options, headers });
  if (resp.status === 401 && !retried) {
    const entered = window.prompt("这个服务需要 API key：");
    if (entered) {
      localStorage.setItem("speechqa.apiKey", entered.trim());
      return api(path, options, true);
    }
  }
  if (!resp.ok) {
    let message = `HTTP ${resp.status}`;
    try {
      const body = await resp.json();
      if (body.error) message = body.error.message;
    } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return resp;
}

const getJSON = async (path) => (await api(path)).json();
const postJSON = async (path, body) =>
  (await api(path, { method: "POST", body: JSON.stringify(body) })).json();

function setStatus(text) { $("#status").textContent = text || ""; }

// -- the speeches ---------------------------------------------------------------------------
async function loadDocs() {
  const models = await getJSON("/v1/models");
  state.docs = models.data
    .filter((m) => m.doc_id)
    .map((m) => ({ id: m.doc_id, name: m.name.replace(/^speechqa[：:]\s*/, "") }));
  state.selected = new Set(state.docs.map((d) => d.id));
  const list = $("#docs");
  list.replaceChildren();
  for (const doc of state.docs) {
    const box = el("input", { type: "checkbox", id: `doc-${doc.id}`, "data-doc": doc.id });
    box.checked = true;
    box.addEventListener("change", () => {
      if (box.checked) state.selected.add(doc.id); else state.selected.delete(doc.id);
      setStatus(`提问范围：${state.selected.size} / ${state.docs.length} 篇`);
    });
    const label = el("label", { for: `doc-${doc.id}` }, doc.name, el("span", { class: "id", text: doc.id }));
    const btn = el("button", { type: "button", class: "outline-btn", text: "提纲", "data-doc": doc.id,
      onclick: () => showOutline(doc) });
    list.append(el("li", {}, box, label, btn));
  }
  setStatus(state.docs.length ? `已收录 ${state.docs.length} 篇讲话` : "还没有收录讲话");
}

async function docText(docId) {
  if (!state.texts.has(docId)) {
    const doc = await getJSON(`/v1/documents/${encodeURIComponent(docId)}`);
    // Offsets are Python string indices (code points); JavaScript strings are UTF-16.
    const cps = Array.from(doc.text);
    const lineStarts = [0];
    cps.forEach((ch, i) => { if (ch === "\n") lineStarts.push(i + 1); });
    state.texts.set(docId, { text: doc.text, cps, lineStarts, title: doc.title });
  }
  return state.texts.get(docId);
}

function docName(docId) {
  const d = state.docs.find((x) => x.id === docId);
  return d ? d.name : docId;
}

async function showOutline(doc) {
  const data = await getJSON(`/v1/documents/${encodeURIComponent(doc.id)}/sections`);
  $("#outline-panel").hidden = false;
  $("#outline-title").textContent = `《${doc.name}》提纲`;
  const render = (sections) => {
    const ul = el("ul");
    for (const s of sections) {
      const name = s.kind === "preamble" ? `开头：${s.title}` : s.kind === "closing"
        ? `结尾：${s.title}` : `${s.marker || ""}${s.title}`;
      const btn = el("button", { type: "button", text: name, "data-section": s.id,
        onclick: () => showSummary(doc, s, name, btn) });
      const li = el("li", {}, btn);
      if (s.children && s.children.length) li.append(render(s.children));
      ul.append(li);
    }
    return ul;
  };
  const tree = render(data.sections);
  tree.className = "outline";
  tree.id = "outline";
  $("#outline").replaceWith(tree);
}

async function showSummary(doc, section, name, button) {
  document.querySelectorAll(".outline button.active").forEach((b) => b.classList.remove("active"));
  button.classList.add("active");
  const data = await postJSON("/v1/summarize",
    { doc_id: doc.id, section_id: section.id, max_sentences: 5 });
  const summary = data.sections[0];
  $("#source-title").textContent = "部分摘要";
  const [first, last] = section.paragraphs;
  const paras = first === last ? `第 ${first} 段` : `第 ${first}–${last} 段`;
  $("#source-meta").textContent = `《${doc.name}》 ${name} · ${paras}`;
  const list = el("ol", { class: "summary-list" });
  for (const s of summary.sentences) {
    list.append(el("li", {
      title: "在原文段落中查看",
      onclick: () => showSource({ doc_id: doc.id, doc_title: doc.name, section_title: name,
        paragraph: s.paragraph, start: s.start, end: s.end, text: s.text }),
    }, s.text + (s.trimmed ? "……" : "")));
  }
  const body = $("#source-body");
  body.replaceChildren(list, el("p", { class: "hint", text: "点击一句，查看它所在的段落。" }));
}

// -- a citation in its paragraph ------------------------------------------------------------
async function showSource(c) {
  const doc = await docText(c.doc_id);
  const lineStart = doc.lineStarts[c.paragraph - 1] ?? 0;
  const next = doc.lineStarts[c.paragraph];
  const lineEnd = next === undefined ? doc.cps.length : next - 1;
  const slice = (a, b) => doc.cps.slice(a, b).join("");
  const a = Math.max(c.start, lineStart);
  const b = Math.min(c.end, lineEnd);
  const para = el("p", { class: "para" });
  para.append(slice(lineStart, a));
  const mark = el("mark");
  if (c.answer_start != null && c.answer_start >= a && c.answer_end <= b) {
    mark.append(slice(a, c.answer_start), el("span", { class: "answer", text: slice(c.answer_start, c.answer_end) }),
      slice(c.answer_end, b));
  } else {
    mark.append(slice(a, b));
  }
  para.append(mark, slice(b, lineEnd));
  $("#source-title").textContent = "原文";
  const section = c.section_title ? ` · ${c.section_title}` : "";
  $("#source-meta").textContent = `《${c.doc_title || docName(c.doc_id)}》${section} · 第 ${c.paragraph} 段`;
  $("#source-body").replaceChildren(para);
  mark.scrollIntoView({ block: "center", behavior: "smooth" });
}

// -- rendering replies ----------------------------------------------------------------------
function inline(text, onCite) {
  // **bold** and [n] markers; everything else is text (never HTML).
  const frag = document.createDocumentFragment();
  const re = /\*\*(.+?)\*\*|\[(\d+)\]/g;
  let last = 0;
  let m;
  while ((m = re.exec(text))) {
    frag.append(text.slice(last, m.index));
    if (m[1] !== undefined) frag.append(el("strong", {}, inline(m[1], onCite)));
    else frag.append(onCite(Number(m[2])));
    last = re.lastIndex;
  }
  frag.append(text.slice(last));
  return frag;
}

function renderBody(text, onCite) {
  const body = el("div", { class: "body" });
  let list = null;
  let sub = null;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\s+$/, "");
    if (!line.trim()) { list = null; sub = null; continue; }
    let m;
    if ((m = /^(\s*)- (.*)$/.exec(line))) {
      if (m[1].length >= 2 && list && list.lastElementChild) {
        if (!sub) { sub = el("ul"); list.lastElementChild.append(sub); }
        sub.append(el("li", {}, inline(m[2], onCite)));
      } else {
        if (!list) { list = el("ul"); body.append(list); }
        sub = null;
        list.append(el("li", {}, inline(m[2], onCite)));
      }
      continue;
    }
    list = null; sub = null;
    if (line.startsWith("> ")) body.append(el("blockquote", {}, inline(line.slice(2), onCite)));
    else body.append(el("p", {}, inline(line, onCite)));
  }
  return body;
}

function renderAssistant(node, text, citations) {
  const byIndex = new Map((citations || []).map((c) => [c.index, c]));
  const onCite = (n) => {
    const c = byIndex.get(n);
    const btn = el("button", { type: "button", class: "cite", text: `[${n}]`, "data-cite": String(n) });
    if (c) {
      btn.title = c.text;
      btn.addEventListener("click", () => {
        document.querySelectorAll(".cite.active").forEach((x) => x.classList.remove("active"));
        btn.classList.add("active");
        showSource(c);
      });
    }
    return btn;
  };
  const body = renderBody(text, onCite);
  node.replaceChildren(body);
  if (citations && citations.length) {
    const list = el("ol", { class: "citations" });
    for (const c of citations) {
      const where = `《${c.doc_title}》${c.section_title ? " · " + c.section_title : ""} · 第 ${c.paragraph} 段`;
      list.append(el("li", {}, onCite(c.index),
        el("span", { class: "where", text: where, onclick: () => showSource(c) })));
    }
    node.append(list);
  }
}

function addMessage(role, text) {
  const node = el("div", { class: `msg ${role}` });
  if (role === "user") node.textContent = text;
  const box = $("#messages");
  const welcome = box.querySelector(".welcome");
  if (welcome) welcome.remove();
  box.append(node);
  box.scrollTop = box.scrollHeight;
  return node;
}

// -- asking ---------------------------------------------------------------------------------
async function ask(question) {
  if (state.busy || !question.trim()) return;
  if (state.docs.length && state.selected.size === 0) {
    setStatus("请至少勾选一篇讲话");
    return;
  }
  state.busy = true;
  $("#send").disabled = true;
  addMessage("user", question);
  state.history.push({ role: "user", content: question });
  const node = addMessage("assistant", "");
  node.classList.add("streaming");
  const body = { model: "speechqa", stream: true, messages: state.history };
  if (state.selected.size && state.selected.size < state.docs.length) body.doc_ids = [...state.selected];
  let text = "";
  let citations = [];
  try {
    const resp = await api("/v1/chat/completions", { method: "POST", body: JSON.stringify(body) });
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let done = false;
    while (!done) {
      const chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") { done = true; break; }
          const parsed = JSON.parse(data);
          const choice = parsed.choices && parsed.choices[0];
          if (choice && choice.delta && choice.delta.content) text += choice.delta.content;
          if (parsed.citations) citations = parsed.citations;
        }
        renderAssistant(node, text, citations);
        $("#messages").scrollTop = $("#messages").scrollHeight;
      }
    }
    node.classList.remove("streaming");
    renderAssistant(node, text, citations);
    node.dataset.done = "true";
    state.history.push({ role: "assistant", content: text });
  } catch (err) {
    node.classList.remove("streaming");
    node.classList.add("error");
    node.replaceChildren(el("div", { class: "body", text: `出错了：${err.message}` }));
    node.dataset.done = "true";
    state.history.pop();
  } finally {
    state.busy = false;
    $("#send").disabled = false;
    $("#messages").scrollTop = $("#messages").scrollHeight;
  }
}

function init() {
  const input = $("#input");
  $("#ask-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = input.value;
    input.value = "";
    ask(q);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("#ask-form").requestSubmit();
    }
  });
  document.querySelectorAll(".example").forEach((b) => b.addEventListener("click", () => ask(b.textContent)));
  $("#new-chat").addEventListener("click", () => {
    state.history = [];
    $("#messages").replaceChildren();
    setStatus("新对话");
    input.focus();
  });
  loadDocs().catch((err) => setStatus(`无法读取讲话列表：${err.message}`));
  input.focus();
}

init();
