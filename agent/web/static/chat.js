// The customer web chat: streams replies, shows tool activity, citations and hand-off state;
// while a person has the conversation, follows its live feed (who joined, replied, left).
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
const shownNotices = new Set();
let following = null;  // the conversation's live feed while a person has it
let lastEventId = 0;  // the newest desk event the page has accounted for

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

// "Source: [1] …" or "Sources:" and "[1] …" lines, as the offline model writes them for the
// terminal and the staff desk (and Claude now and then); in Spanish and German "Fuente(s):",
// "Quelle(n):" (agent/models/offline_phrases.py).
const SOURCE_HEAD = /^\s*(?:\*\*)?(?:sources?|fuentes?|quellen?)(?:\*\*)?\s*:(?:\*\*)?(.*)$/i;
const SOURCE_LINE = /^\s*(?:[-*•]\s*)?\[(\d{1,3})\]/;

// A reply and its sources, each source once: the list under the answer shows them, so lines
// of the text that only name sources the list has are left out.
function answerHtml(text, citations) {
  const listed = new Set((citations || []).map((c) => String(c.number)));
  const lines = (text || "").split("\n");
  const kept = [];
  for (let i = 0; i < lines.length; i++) {
    const head = listed.size ? SOURCE_HEAD.exec(lines[i]) : null;
    if (!head) { kept.push(lines[i]); continue; }
    const refs = [...head[1].matchAll(/\[(\d{1,3})\]/g)].map((m) => m[1]);
    let end = i;
    if (!head[1].trim()) {  // "Sources:" with one source a line below
      while (end + 1 < lines.length && SOURCE_LINE.test(lines[end + 1])) refs.push(SOURCE_LINE.exec(lines[++end])[1]);
    }
    if (refs.length && refs.every((n) => listed.has(n))) i = end;
    else kept.push(lines[i]);
  }
  return renderText(kept.join("\n").trim(), citations) + sourcesHtml(citations);
}

// `synced`: the state comes from the transcript just read (its notices and last_event_id).
function showState(state, synced) {
  stateLabel.hidden = state === "bot";
  stateLabel.textContent = state === "human" ? "With a human agent" : state === "closed" ? "Conversation ended" : state;
  if (state === "human" && !following) follow(synced);
  if (state !== "human" && following) { following.stop(); following = null; }
  onConversationState(state);  // rating.js: "I'm done", and the rating prompt
}

// -- while a person has the conversation: its live feed ------------------------------------

// What the customer is told of people joining and leaving: a small centred line.
function noticeElement(n) {
  const div = document.createElement("div");
  div.className = "msg system";
  div.dataset.notice = n.id;
  div.setAttribute("role", "status");
  div.textContent = n.text;
  return div;
}

function addNotice(n) {
  if (shownNotices.has(n.id)) return;
  shownNotices.add(n.id);
  log.appendChild(noticeElement(n));
  scroll();
}

// Follow the conversation's events (people joining, replying, resolving) until the
// assistant has it back. Unless just synced, the transcript is read first: where to start.
async function follow(synced) {
  const feed = {inner: null, stopped: false, stop() { this.stopped = true; if (this.inner) this.inner.stop(); }};
  following = feed;
  if (!synced) await refresh().catch(() => {});  // shows what was missed; may stop this feed
  if (feed.stopped || following !== feed || !conversation) return;
  feed.inner = followEvents(`/v1/conversations/${encodeURIComponent(conversation.id)}/events?after=${lastEventId}`, {
    headers,
    onEvent(name, data, id) {
      if (id) lastEventId = Math.max(lastEventId, Number(id));
      if (name === "notice") {
        addNotice(data);
        if (data.kind === "resolved") {  // the stream ends here: the assistant is back
          feed.stop();
          if (following === feed) following = null;
          refresh();
        }
      } else if (name === "staff_reply") {
        refresh();
      }
    },
    onFatal() { if (following === feed) following = null; },
  });
}

function showNotice(text) { notice.textContent = text; notice.hidden = !text; }

async function ensureConversation() {
  if (conversation) return conversation;
  const body = cfg.customerToken ? {customer_token: cfg.customerToken} : {};
  const response = await fetch("/v1/conversations", {
    method: "POST", headers: {...headers(), "Content-Type": "application/json"}, body: JSON.stringify(body),
  });
  if (!response.ok) throw await responseError(response);
  const data = await response.json();
  conversation = data;
  sessionStorage.setItem("supportbot.conversation", JSON.stringify(data));
  return conversation;
}

// Messages and notices in time order (a notice after a message of the same instant).
function inTimeOrder(messages, notices) {
  const items = messages.map((m, i) => ({at: parseTime(m.created_at), order: i, message: m}))
    .concat(notices.map((n, i) => ({at: parseTime(n.created_at), order: messages.length + i, notice: n})));
  return items.sort((a, b) => (a.at - b.at) || (a.order - b.order));
}

// While a human has the conversation: the transcript, for their replies and notices.
async function refresh() {
  if (!conversation) return;
  const response = await fetch("/v1/conversations/" + conversation.id, {headers: headers()});
  if (!response.ok) return;
  const data = await response.json();
  lastEventId = Math.max(lastEventId, data.last_event_id || 0);
  const fresh = data.messages.filter((m) => !shownIds.has(m.id) && m.role === "staff");
  for (const m of data.messages) shownIds.add(m.id);  // the customer's and the assistant's are shown
  for (const item of inTimeOrder(fresh, (data.notices || []).filter((n) => !shownNotices.has(n.id)))) {
    if (item.notice) { addNotice(item.notice); continue; }
    const m = item.message;
    addMessage("staff", `<div class="who">${escapeHtml(m.author || "Support team")}</div>` + renderText(m.text, []));
  }
  showState(data.state, true);
}

async function loadHistory() {
  if (!conversation) return;
  const response = await fetch("/v1/conversations/" + conversation.id, {headers: headers()});
  if (!response.ok) { sessionStorage.removeItem("supportbot.conversation"); conversation = null; return; }
  const data = await response.json();
  lastEventId = Math.max(lastEventId, data.last_event_id || 0);
  for (const item of inTimeOrder(data.messages, data.notices || [])) {
    if (item.notice) { addNotice(item.notice); continue; }
    const m = item.message;
    shownIds.add(m.id);
    const who = m.role === "staff" ? `<div class="who">${escapeHtml(m.author || "Support team")}</div>` : "";
    if (m.action) {
      // A change the assistant proposed: its buttons while it waits, else how it ended.
      const div = addMessage(m.role, proposalHtml(m.text, m.action.summary));
      addProposal(div, m.action, proposalLanguage(m.text, m.action.summary));
      continue;
    }
    addMessage(m.role, who + imagesHtml(m.images) + answerHtml(m.text, m.citations));
  }
  showState(data.state, true);
}

const humanButton = document.getElementById("human");

function answering(busy) {
  // One turn at a time: while the assistant answers, nothing else can be sent from this page.
  sendButton.disabled = busy;
  humanButton.disabled = busy;
  doneButton.disabled = busy;
  input.placeholder = busy ? "Still answering…" : "Type your message…";
  for (const box of log.querySelectorAll(".proposal:not(.settled)")) {
    for (const b of box.querySelectorAll(".choices button")) b.disabled = busy;
  }
}

// -- order changes waiting for the customer's confirmation ----------------------------------

// The engine words its question in the customer's language (agent/engine/consent.py PROMPTS):
// its opening is left out before the box, and tells the language of the box and its buttons.
const CONFIRM_HEADS = {en: "Please confirm:", es: "Confirme, por favor:",
                       de: "Bitte bestätigen Sie:", fr: "Veuillez confirmer :"};
const CHOICE_WORDS = {
  en: {box: "The change to confirm", group: "Confirm this change?", confirm: "Confirm",
       decline: "Decline", confirming: "Confirming…", declining: "Declining…"},
  es: {box: "El cambio que debe confirmar", group: "¿Confirma este cambio?", confirm: "Confirmar",
       decline: "Rechazar", confirming: "Confirmando…", declining: "Rechazando…"},
  de: {box: "Die Änderung zur Bestätigung", group: "Diese Änderung bestätigen?", confirm: "Bestätigen",
       decline: "Ablehnen", confirming: "Wird bestätigt…", declining: "Wird abgelehnt…"},
  fr: {box: "La modification à confirmer", group: "Confirmer cette modification ?", confirm: "Confirmer",
       decline: "Refuser", confirming: "Confirmation…", declining: "Refus…"},
};
// How a settled change reads under its proposal.
const SETTLED_WORDS = {
  en: {executed: "Confirmed", declined: "Declined", expired: "Expired",
       failed: "Not carried out", superseded: "Not carried out"},
  es: {executed: "Confirmado", declined: "Rechazado", expired: "Caducado",
       failed: "No realizado", superseded: "No realizado"},
  de: {executed: "Bestätigt", declined: "Abgelehnt", expired: "Abgelaufen",
       failed: "Nicht ausgeführt", superseded: "Nicht ausgeführt"},
  fr: {executed: "Confirmé", declined: "Refusé", expired: "Expiré",
       failed: "Non effectué", superseded: "Non effectué"},
};
// ... and its line among the assistant's tool notes.
const SETTLED_NOTE = {executed: " ✓", declined: " — declined", expired: " — expired",
                      failed: " — failed", superseded: " — not carried out"};

// The proposal: the assistant's own words, then the change itself in a box of its own, set apart
// from anything the model wrote (which may quote or mimic a summary: the box holds only the
// summary the server built from the checked change, and it is the last one in the text).
function proposalHtml(text, summary) {
  const at = summary ? text.lastIndexOf(summary) : -1;
  if (at < 0) return renderText(text, []);
  const language = proposalLanguage(text, summary);
  const before = text.slice(0, at).trimEnd(), head = CONFIRM_HEADS[language];
  const said = (before.endsWith(head) ? before.slice(0, -head.length) : before).trim();
  const label = CHOICE_WORDS[language].box;
  return (said ? renderText(said, []) : "")
    + `<div class="change-summary" role="group" aria-label="${label}">`
    + `<div class="label">${label}</div><div class="what">${renderText(summary, [])}</div></div>`
    + renderText(text.slice(at + summary.length).trim(), []);
}

// The language of the engine's question just before the summary ("en" when it is not there).
function proposalLanguage(text, summary) {
  const at = summary ? (text || "").lastIndexOf(summary) : -1;
  const before = at < 0 ? "" : text.slice(0, at).trimEnd();
  const found = Object.keys(CONFIRM_HEADS).find((lang) => before.endsWith(CONFIRM_HEADS[lang]));
  return found || "en";
}

// Confirm / Decline under the assistant's proposal, or how it ended once settled.
// `language`: the question's (proposalLanguage), which the buttons and outcome speak too.
function addProposal(bubble, action, language) {
  const box = document.createElement("div");
  box.className = "proposal";
  box.dataset.action = action.id;
  box.dataset.language = CHOICE_WORDS[language] ? language : "en";
  const words = CHOICE_WORDS[box.dataset.language];
  if (!action.status || action.status === "proposed") {
    const choices = document.createElement("div");
    choices.className = "choices";
    choices.setAttribute("role", "group");
    choices.setAttribute("aria-label", words.group);
    const yes = document.createElement("button");
    yes.type = "button"; yes.className = "confirm"; yes.textContent = words.confirm;
    const no = document.createElement("button");
    no.type = "button"; no.className = "decline secondary"; no.textContent = words.decline;
    yes.addEventListener("click", () => decide(box, true));
    no.addEventListener("click", () => decide(box, false));
    choices.append(yes, no);
    box.appendChild(choices);
  }
  const outcome = document.createElement("div");
  outcome.className = "decision";
  outcome.setAttribute("role", "status");
  outcome.setAttribute("aria-live", "polite");
  box.appendChild(outcome);
  bubble.appendChild(box);
  if (action.status && action.status !== "proposed") settleProposal(action.id, action.status);
  return box;
}

function settledWords(box) { return SETTLED_WORDS[box.dataset.language] || SETTLED_WORDS.en; }

// Show how a proposed change ended: the buttons give way to a muted line.
function settleProposal(actionId, status) {
  const box = log.querySelector(`.proposal[data-action="${CSS.escape(actionId)}"]`);
  if (!box) return;
  box.classList.remove("deciding");
  box.classList.add("settled", "status-" + status);
  const choices = box.querySelector(".choices");
  if (choices) choices.remove();
  box.querySelector(".decision").textContent = settledWords(box)[status] || status;
  const note = box.parentElement.querySelector(".tool.awaiting");
  if (note) {
    note.classList.remove("awaiting", "running");
    note.classList.toggle("failed", status === "failed");
    note.textContent = note.dataset.label + (SETTLED_NOTE[status] || "");
  }
}

async function decide(box, confirm) {
  if (box.classList.contains("deciding") || box.classList.contains("settled") || sendButton.disabled) return;
  box.classList.add("deciding");
  for (const b of box.querySelectorAll(".choices button")) b.disabled = true;  // no second submit
  const words = CHOICE_WORDS[box.dataset.language] || CHOICE_WORDS.en;
  box.querySelector(".decision").textContent = confirm ? words.confirming : words.declining;
  const verb = confirm ? "confirm" : "decline";
  answering(true);
  try {
    await streamTurn(`/v1/conversations/${conversation.id}/actions/${encodeURIComponent(box.dataset.action)}/${verb}`,
                     {}, {decision: true});
  } finally {
    if (!box.classList.contains("settled")) {  // it did not go through: the choice stays open
      box.classList.remove("deciding");
      box.querySelector(".decision").textContent = "";
    }
    answering(false);
    input.focus();
  }
}

// -- one turn: a message or a decision, streamed into a new assistant bubble ----------------

// `target`: the URL, or a function that resolves it (the first message starts the conversation).
async function streamTurn(target, payload, options) {
  options = options || {};
  const decision = Boolean(options.decision);
  const bubble = addMessage("assistant", "", "pending");
  const activity = document.createElement("div");
  activity.className = "activity";
  const body = document.createElement("div");
  bubble.append(activity, body);
  let streamed = "";
  try {
    const url = typeof target === "function" ? await target() : target;
    await postEvents(url, headers(), payload, (event, data) => {
      if (event === "text") { streamed += data.delta; body.innerHTML = renderText(streamed, []); scroll(); }
      else if (event === "working") { bubble.classList.add("working"); }
      else if (event === "progress") {
        // The assistant's short notes between tool calls: shown as working notes, muted.
        let note = activity.querySelector(".note:last-child");
        if (!note) { note = document.createElement("div"); note.className = "note"; activity.appendChild(note); }
        note.textContent += data.delta; scroll();
      } else if (event === "tool_start") {
        const item = document.createElement("div");
        item.className = "tool running"; item.dataset.id = data.id; item.dataset.name = data.name;
        item.dataset.label = data.label; item.textContent = data.label + "…";
        activity.appendChild(item); scroll();
      } else if (event === "tool_finish") {
        // A decision's first event is the proposed change's outcome: its note is in the proposal.
        const item = activity.querySelector(`[data-id="${CSS.escape(data.id)}"]`)
          || log.querySelector(`.tool.awaiting[data-id="${CSS.escape(data.id)}"]`);
        if (item && item.classList.contains("awaiting")) {
          if (!data.is_error) { item.classList.remove("awaiting"); item.textContent = item.dataset.label + " ✓"; }
        } else if (item && data.needs_verification) {
          // Refused until the customer is verified: a step of the conversation, not a failure.
          item.classList.replace("running", "needs-verification");
          item.textContent = item.dataset.label + " — I need to verify who you are first";
        } else if (item && data.waits) {
          // Identity checks paused after failed attempts: a wait, not a failure.
          item.classList.replace("running", "needs-verification");
          item.textContent = item.dataset.label + " — paused for a moment";
        } else if (item) {
          item.classList.remove("running"); item.classList.toggle("failed", data.is_error);
          item.textContent = item.dataset.label + (data.is_error ? " — failed" : " ✓");
        }
      } else if (event === "pending_action") {
        // The change is held for the customer: its note says so until they answer.
        const item = activity.querySelector(`.tool.running[data-name="${CSS.escape(data.tool)}"]`);
        if (item) {
          item.classList.replace("running", "awaiting");
          item.textContent = item.dataset.label + " — waiting for your confirmation";
        }
      } else if (event === "degraded") { showNotice(data.message); }
      else if (event === "error") { body.textContent = data.message; bubble.classList.add("error"); }
      else if (event === "final") {
        bubble.classList.remove("pending", "working");
        if (data.message_id) shownIds.add(data.message_id);
        if (data.action) settleProposal(data.action.id, data.action.status);
        if (data.outcome === "queued_for_human") {
          body.innerHTML = decision ? "" : "<em>Your message was passed to our team. They'll reply here.</em>";
        } else if (data.pending_action) {
          body.innerHTML = proposalHtml(data.reply, data.pending_action.summary);
          addProposal(bubble, data.pending_action, proposalLanguage(data.reply, data.pending_action.summary));
        } else {
          body.innerHTML = answerHtml(data.reply, data.citations);
        }
        // A decision already settled elsewhere, with no answer to show: nothing to add here.
        if (decision && !body.textContent.trim() && !activity.children.length) bubble.remove();
        if (data.degraded) showNotice("The AI assistant is unavailable right now; answering in offline mode.");
        showState(data.state);
        scroll();
      }
    });
  } catch (error) {
    bubble.classList.remove("pending"); bubble.classList.add("error");
    if (error.code === "turn_in_progress") {
      // Another window of this conversation is still being answered.
      body.textContent = decision ? "I'm still answering your previous message; try again in a moment."
                                  : "I'm still answering your previous message; send this again in a moment.";
    } else {
      body.textContent = "Sorry, that didn't go through: " + error.message;
    }
    // Refused (an HTTP error, before any event): nothing was stored, so what was typed goes
    // back in the box to be edited or sent again, unless something new was typed meanwhile.
    if (error.status && options.draft) restoreDraft(options.draft);
    scroll();
  }
}

function restoreDraft({text, files}) {
  if (text && !input.value) input.value = text;
  if (files && files.length && !photos.files.length) {
    const kept = new DataTransfer();
    for (const f of files) kept.items.add(f);
    photos.files = kept.files;
  }
}

// -- the composer: a message over the length limit is not sent, and not cleared ------------

const composerError = document.getElementById("composer-error");

// The message's length as the server counts it (characters, not UTF-16 units), past the limit.
function tooLong(text) {
  const length = [...text].length;
  return cfg.maxMessageChars && length > cfg.maxMessageChars ? length : 0;
}

function showTooLong(text) {
  const length = tooLong(text);
  composerError.textContent = length
    ? `Your message is too long: ${length.toLocaleString("en")} characters; the limit is `
      + `${cfg.maxMessageChars.toLocaleString("en")}. Please shorten it.`
    : "";
  composerError.hidden = !length;
  return length > 0;
}

// `typed`: the text (and photos) came from the composer, and go back there if refused.
async function send(text, files, typed) {
  answering(true);
  const thumbs = (files || []).map((f) => `<img class="photo-thumb" src="${URL.createObjectURL(f)}" alt="Your photo">`).join("");
  addMessage("customer", thumbs + escapeHtml(text).replace(/\n/g, "<br>"));
  try {
    let payload = {text};
    if (files && files.length) {
      payload = new FormData();
      payload.append("text", text);
      for (const f of files) payload.append("images", f, f.name);
    }
    // A change waiting for confirmation is settled by this message (the server decides how).
    await streamTurn(async () => `/v1/conversations/${(await ensureConversation()).id}/messages`, payload,
                     {draft: typed ? {text, files} : null});
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
  if (showTooLong(text)) { input.focus(); return; }  // the text stays in the box
  input.value = "";
  photos.value = "";
  send(text, files, true);
});
input.addEventListener("input", () => {
  if (!composerError.hidden) showTooLong(input.value.trim());  // gone once it fits
});
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
});
humanButton.addEventListener("click", () => {
  if (!humanButton.disabled) send("I'd like to talk to a human, please.");
});
loadHistory();
