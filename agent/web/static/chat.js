// The customer web chat: streams replies, shows tool activity, citations and hand-off state.
"use strict";

const cfg = window.SUPPORTBOT;
const log = document.getElementById("log");
const form = document.getElementById("composer");
const input = document.getElementById("text");
const sendButton = document.getElementById("send");
const stateLabel = document.getElementById("state");
const photos = document.getElementById("photos");
const notice = document.getElementById("notice");
let conversation = JSON.parse(sessionStorage.getItem("supportbot.conversation") || "null");
let shownIds = new Set();
let polling = null;

function headers() {
  const h = {"Authorization": "Bearer " + cfg.widgetKey};
  if (conversation) h["X-Conversation-Token"] = conversation.conversation_token;
  return h;
}

function scroll() { log.scrollTop = log.scrollHeight; }

function addMessage(role, html, extra) {
  const div = document.createElement("div");
  div.className = "msg " + role + (extra ? " " + extra : "");
  div.innerHTML = html;
  log.appendChild(div);
  scroll();
  return div;
}

function sourcesHtml(citations) {
  if (!citations || !citations.length) return "";
  const items = citations.map((c) => {
    const label = escapeHtml(c.title + (c.section ? " › " + c.section : "") + (c.page ? ` (p. ${c.page})` : ""));
    return safeUrl(c.url) ? `<li><a href="${escapeHtml(c.url)}" target="_blank" rel="noopener">[${c.number}] ${label}</a></li>`
                 : `<li>[${c.number}] ${label}</li>`;
  });
  return `<ol class="sources">${items.join("")}</ol>`;
}

function showState(state) {
  stateLabel.hidden = state === "bot";
  stateLabel.textContent = state === "human" ? "With a human agent" : state;
  if (state === "human" && !polling) polling = setInterval(refresh, 2500);
  if (state !== "human" && polling) { clearInterval(polling); polling = null; }
}

function showNotice(text) { notice.textContent = text; notice.hidden = !text; }

async function ensureConversation() {
  if (conversation) return conversation;
  const body = cfg.customerToken ? {customer_token: cfg.customerToken} : {};
  const response = await fetch("/v1/conversations", {
    method: "POST", headers: {...headers(), "Content-Type": "application/json"}, body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error.message);
  conversation = data;
  sessionStorage.setItem("supportbot.conversation", JSON.stringify(data));
  return conversation;
}

// While a human has the conversation, fetch the transcript for their replies.
async function refresh() {
  if (!conversation) return;
  const response = await fetch("/v1/conversations/" + conversation.id, {headers: headers()});
  if (!response.ok) return;
  const data = await response.json();
  for (const m of data.messages) {
    if (shownIds.has(m.id)) continue;
    shownIds.add(m.id);
    if (m.role === "staff") {
      addMessage("staff", `<div class="who">${escapeHtml(m.author || "Support team")}</div>` + renderText(m.text, []));
    }
  }
  showState(data.state);
}

async function loadHistory() {
  if (!conversation) return;
  const response = await fetch("/v1/conversations/" + conversation.id, {headers: headers()});
  if (!response.ok) { sessionStorage.removeItem("supportbot.conversation"); conversation = null; return; }
  const data = await response.json();
  for (const m of data.messages) {
    shownIds.add(m.id);
    const who = m.role === "staff" ? `<div class="who">${escapeHtml(m.author || "Support team")}</div>` : "";
    addMessage(m.role, who + imagesHtml(m.images) + renderText(m.text, m.citations) + sourcesHtml(m.citations));
  }
  showState(data.state);
}

const humanButton = document.getElementById("human");

function answering(busy) {
  // One turn at a time: while the assistant answers, nothing else can be sent from this page.
  sendButton.disabled = busy;
  humanButton.disabled = busy;
  input.placeholder = busy ? "Still answering…" : "Type your message…";
}

async function send(text, files) {
  answering(true);
  const thumbs = (files || []).map((f) => `<img class="photo-thumb" src="${URL.createObjectURL(f)}" alt="Your photo">`).join("");
  addMessage("customer", thumbs + escapeHtml(text).replace(/\n/g, "<br>"));
  const bubble = addMessage("assistant", "", "pending");
  const activity = document.createElement("div");
  activity.className = "activity";
  const body = document.createElement("div");
  bubble.append(activity, body);
  let streamed = "";
  try {
    const conv = await ensureConversation();
    let payload = {text};
    if (files && files.length) {
      payload = new FormData();
      payload.append("text", text);
      for (const f of files) payload.append("images", f, f.name);
    }
    await postEvents(`/v1/conversations/${conv.id}/messages`, headers(), payload, (event, data) => {
      if (event === "text") { streamed += data.delta; body.innerHTML = renderText(streamed, []); scroll(); }
      else if (event === "working") { bubble.classList.add("working"); }
      else if (event === "progress") {
        // The assistant's short notes between tool calls: shown as working notes, muted.
        let note = activity.querySelector(".note:last-child");
        if (!note) { note = document.createElement("div"); note.className = "note"; activity.appendChild(note); }
        note.textContent += data.delta; scroll();
      } else if (event === "tool_start") {
        const item = document.createElement("div");
        item.className = "tool running"; item.dataset.id = data.id; item.textContent = data.label + "…";
        activity.appendChild(item); scroll();
      } else if (event === "tool_finish") {
        const item = activity.querySelector(`[data-id="${CSS.escape(data.id)}"]`);
        if (item) { item.classList.remove("running"); item.classList.toggle("failed", data.is_error); item.textContent = item.textContent.replace("…", data.is_error ? " — failed" : " ✓"); }
      } else if (event === "degraded") { showNotice(data.message); }
      else if (event === "error") { body.textContent = data.message; bubble.classList.add("error"); }
      else if (event === "final") {
        bubble.classList.remove("pending", "working");
        if (data.message_id) shownIds.add(data.message_id);
        if (data.outcome === "queued_for_human") {
          body.innerHTML = "<em>Your message was passed to our team. They'll reply here.</em>";
        } else {
          body.innerHTML = renderText(data.reply, data.citations) + sourcesHtml(data.citations);
        }
        if (data.degraded) showNotice("The AI assistant is unavailable right now; answering in offline mode.");
        showState(data.state);
      }
    });
  } catch (error) {
    bubble.classList.remove("pending"); bubble.classList.add("error");
    if (error.code === "turn_in_progress") {
      // Another window of this conversation is still being answered: keep the text.
      body.textContent = "I'm still answering your previous message; send this again in a moment.";
      if (!input.value) input.value = text;
    } else {
      body.textContent = "Sorry, that didn't go through: " + error.message;
    }
  } finally {
    answering(false);
    input.focus();
  }
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = input.value.trim();
  const files = Array.from(photos.files || []);
  if ((!text && !files.length) || sendButton.disabled) return;
  input.value = "";
  photos.value = "";
  send(text, files);
});
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
});
humanButton.addEventListener("click", () => {
  if (!humanButton.disabled) send("I'd like to talk to a human, please.");
});
loadHistory();
