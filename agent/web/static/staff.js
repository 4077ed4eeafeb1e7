// The staff desk: sign-in, every ticket (filtered and searched), the conversation with claim /
// assign / reply / resolve, saved replies, internal notes, the customer panel, order changes,
// and the desk's live feed (new tickets and messages appear without reloading).
"use strict";

// A desk sign-in token or an admin API key: either is sent as the bearer token (common.js's
// STAFF_TOKEN: the report page signs in with it too).
let token = sessionStorage.getItem(STAFF_TOKEN);
let me = null;  // {id|null, username, display_name}; id null: an admin API key
let colleagues = [];
let savedReplies = [];
let current = null;  // the selected ticket (TicketOut)
let feed = null;  // the desk's live feed while signed in
let shownTickets = [];
let listSeq = 0;
const PAGE = 50;
let listLimit = PAGE;
const unread = new Set();  // conversations with customer messages not seen on the desk yet
const fresh = new Set();  // tickets opened while the desk was open, not looked at yet
const TITLE = document.title;

// The tab's title counts the new tickets, for a desk in a background tab.
function showFresh() { document.title = fresh.size ? `(${fresh.size}) ${TITLE}` : TITLE; }

const $ = (id) => document.getElementById(id);

// -- talking to the API ---------------------------------------------------------------------

async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: {"Authorization": "Bearer " + token, ...(body !== undefined ? {"Content-Type": "application/json"} : {})},
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  if (!response.ok) {
    const error = await responseError(response);
    if (response.status === 401 && token) signedOut(error.message);
    throw error;
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  return {data, response};
}

async function api(method, path, body) { return (await call(method, path, body)).data; }

// Refreshes asked for in a burst (several events at once) run once; never two of a kind at once.
const jobs = new Map();
function soon(name, fn, delay = 120) {
  let job = jobs.get(name);
  if (!job) { job = {timer: null, running: false, again: false, fn}; jobs.set(name, job); }
  job.fn = fn;
  if (job.running) { job.again = true; return; }
  clearTimeout(job.timer);
  job.timer = setTimeout(async () => {
    job.running = true;
    try { await job.fn(); } catch (error) { if (error.status !== 401) console.warn(name, error); }
    finally {
      job.running = false;
      if (job.again) { job.again = false; soon(name, job.fn, delay); }
    }
  }, delay);
}

// -- small formatting helpers -----------------------------------------------------------------

function age(iso) {
  const at = parseTime(iso);
  if (!at) return "";
  const s = Math.max(0, (Date.now() - at.getTime()) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h ago";
  return Math.floor(s / 86400) + " d ago";
}

function when(iso) {
  const at = parseTime(iso);
  return at ? at.toLocaleString([], {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"}) : "";
}

function person(who) {
  if (!who) return "";
  if (who === "assistant" || who === "customer") return "the " + who;
  const at = who.indexOf(":");
  if (at < 0) return who;
  const kind = who.slice(0, at), name = who.slice(at + 1);
  return kind === "staff" ? name : `${name} (${kind})`;
}

// The customer ended the conversation while the ticket waited for a person.
function customerLeft(t) { return Boolean(t.customer_ended_at) && t.status !== "resolved"; }
function customerName(t) { return t.customer ? t.customer.name : "Unverified customer"; }
// Where the customer wrote from: the chat, the shop's backend, email (a reply goes out by email).
const CHANNELS = {widget: "chat", backend: "backend", email: "email", cli: "terminal", api: "API", admin: "API"};
function channelPill(t) {
  return t.channel ? `<span class="tag channel ${escapeHtml(t.channel)}">${escapeHtml(CHANNELS[t.channel] || t.channel)}</span>` : "";
}

// -- signing in and out ---------------------------------------------------------------------

// The form (common.js): a staff account, or an admin API key.
staffSignIn({keyLabel: "Open the desk", onToken: (signedIn) => { token = signedIn; return open(); }});

$("sign-out").addEventListener("click", async () => {
  const was = token;
  signedOut("");
  // A desk sign-in stops working at once; an API key is left as it is.
  if (was) await fetch("/v1/staff/sessions/current", {method: "DELETE", headers: {"Authorization": "Bearer " + was}}).catch(() => {});
});

function signedOut(message) {
  token = null;
  sessionStorage.removeItem(STAFF_TOKEN);
  if (feed) { feed.stop(); feed = null; }
  me = null; current = null;
  drafts.clear(); $("reply").value = ""; $("note").value = "";
  fresh.clear(); unread.clear(); showFresh();
  $("desk").hidden = true; $("detail").hidden = true;
  $("who").hidden = true; $("sign-out").hidden = true; $("live").hidden = true;
  $("login").hidden = false;
  showError("login-error", message);
}

async function open() {
  try {
    me = await api("GET", "/v1/staff/me");
  } catch (error) {
    if (error.status !== 401) signedOut(error.message);  // a 401 signed out already
    return;
  }
  $("who").textContent = me.id === null ? `${me.display_name} (API key)` : me.display_name;
  $("who").hidden = false; $("sign-out").hidden = false;
  $("login").hidden = true;
  $("desk").hidden = false;
  await Promise.all([loadColleagues(), loadSavedReplies()]).catch(() => {});
  await loadTickets().catch((error) => showError("desk-error", error.message));
  startFeed();
}

// -- the live feed ----------------------------------------------------------------------------

function startFeed() {
  if (feed) feed.stop();
  let first = true;
  feed = followEvents("/v1/desk/events", {
    headers: () => ({"Authorization": "Bearer " + token}),
    onOpen() { $("live").hidden = false; $("live").classList.remove("off"); },
    onDrop() { $("live").classList.add("off"); },
    onEvent(name, data) {
      if (name === "ready") {
        // Anything between the first list and the feed's start: one more look.
        if (first) { first = false; soon("list", loadTickets); }
        return;
      }
      if (name === "desk") onDeskEvent(data);
    },
    onFatal(error) { if (error.status === 401) signedOut(error.message); },
  });
}

function onDeskEvent(event) {
  const mine = current && (event.ticket_id === current.id || event.conversation_id === current.conversation_id);
  switch (event.kind) {
    case "ticket_opened":
      if (event.ticket_id) { fresh.add(event.ticket_id); showFresh(); }
      soon("list", loadTickets);
      break;
    case "customer_message":
      if (mine) soon("transcript", loadTranscript);
      else if (event.conversation_id) { unread.add(event.conversation_id); markUnread(); }
      break;
    case "staff_reply":
      if (mine) soon("transcript", loadTranscript);
      break;
    case "note":
      if (mine) soon("notes", loadNotes);
      break;
    case "joined": case "unassigned": case "resolved": case "customer_left":
      soon("list", loadTickets);
      if (mine) { soon("ticket", reloadCurrent); soon("transcript", loadTranscript); }
      break;
    default:
      soon("list", loadTickets);
  }
}

// -- the ticket list --------------------------------------------------------------------------

function filterParams() {
  const params = new URLSearchParams({newest_first: "true", limit: String(listLimit)});
  const pairs = {status: $("status").value, assignee: $("assignee").value, q: $("q").value.trim(),
                 customer: $("customer").value.trim(), order_id: $("order").value.trim()};
  for (const [name, value] of Object.entries(pairs)) if (value) params.set(name, value);
  return params;
}

async function loadTickets() {
  const seq = ++listSeq;
  const {data: tickets, response} = await call("GET", "/v1/tickets?" + filterParams());
  if (seq !== listSeq) return;  // a newer search answered first
  shownTickets = tickets;
  const total = Number(response.headers.get("X-Total-Count") || tickets.length);
  $("ticket-count").textContent = total === 1 ? "1 ticket" : `${total} tickets` + (total > tickets.length ? ` (${tickets.length} shown)` : "");
  $("more").hidden = total <= tickets.length;
  const list = $("tickets");
  list.innerHTML = tickets.length ? "" : '<p class="muted">No tickets match.</p>';
  for (const t of tickets) {
    const item = document.createElement("button");
    item.type = "button";
    item.className = "ticket status-" + t.status;
    item.classList.toggle("selected", Boolean(current && current.id === t.id));
    item.classList.toggle("unread", unread.has(t.conversation_id));
    item.classList.toggle("fresh", fresh.has(t.id));
    item.dataset.ticket = t.id;
    item.dataset.conversation = t.conversation_id;
    item.innerHTML = `<div class="ticket-top"><strong>#${escapeHtml(t.id)}</strong> ${escapeHtml(customerName(t))}
        <span class="age" data-at="${escapeHtml(t.created_at)}">${escapeHtml(age(t.created_at))}</span></div>
      <div><span class="pill ${escapeHtml(t.status)}">${escapeHtml(t.status)}${t.claimed_by ? " · " + escapeHtml(t.claimed_by) : ""}</span>
        ${channelPill(t)}
        ${customerLeft(t) ? '<span class="pill left">customer left</span>' : ""}
        <span class="new-message">New message</span></div>
      <div class="muted">${escapeHtml(t.reason)}</div>`;
    item.addEventListener("click", () => select(t));
    list.appendChild(item);
  }
  if (current) {
    const updated = tickets.find((t) => t.id === current.id);
    if (updated && JSON.stringify(updated) !== JSON.stringify(current)) { current = updated; showHead(); }
  }
}

function markUnread() {
  for (const item of document.querySelectorAll("#tickets .ticket")) {
    item.classList.toggle("unread", unread.has(item.dataset.conversation));
  }
}

// Ages tick by themselves, with no request.
setInterval(() => {
  for (const span of document.querySelectorAll("#tickets .age")) span.textContent = age(span.dataset.at);
}, 30000);

let typing = null;
function searchSoon() { clearTimeout(typing); typing = setTimeout(search, 350); }
function search() {
  clearTimeout(typing);
  listLimit = PAGE;
  loadTickets().catch((error) => showError("desk-error", error.message));
}
$("filters").addEventListener("submit", (e) => { e.preventDefault(); search(); });
for (const id of ["status", "assignee"]) $(id).addEventListener("change", search);
for (const id of ["q", "customer", "order"]) $(id).addEventListener("input", searchSoon);
$("clear-filters").addEventListener("click", () => {
  for (const id of ["q", "customer", "order", "status", "assignee"]) $(id).value = "";
  search();
});
$("more").addEventListener("click", () => {
  listLimit = Math.min(listLimit + PAGE, 200);
  loadTickets().catch((error) => showError("desk-error", error.message));
});

async function loadColleagues() {
  colleagues = await api("GET", "/v1/staff");
  const filter = $("assignee");
  const chosen = filter.value;
  for (const option of filter.querySelectorAll("option[data-staff]")) option.remove();
  for (const c of colleagues) {
    const option = new Option(c.display_name, String(c.id));
    option.dataset.staff = "1";
    filter.appendChild(option);
  }
  filter.value = chosen;
  $("assignee").querySelector('option[value="me"]').disabled = me.id === null;  // a key is nobody
}

// -- the selected ticket ----------------------------------------------------------------------

// What was typed for each ticket: a reply written for one customer never goes to another.
const drafts = new Map();

async function select(ticket) {
  if (current) drafts.set(current.id, {reply: $("reply").value, note: $("note").value});
  const draft = drafts.get(ticket.id) || {reply: "", note: ""};
  $("reply").value = draft.reply; $("note").value = draft.note;
  current = ticket;
  unread.delete(ticket.conversation_id);
  fresh.delete(ticket.id);
  showFresh();
  for (const item of document.querySelectorAll("#tickets .ticket")) {
    const on = Number(item.dataset.ticket) === ticket.id;
    item.classList.toggle("selected", on);
    if (on) item.classList.remove("unread", "fresh");
  }
  $("detail").hidden = false;
  showError("desk-error", "");
  shownTranscript = null;
  $("transcript").innerHTML = '<p class="muted">Loading…</p>';
  $("note-list").innerHTML = "";
  $("customer-panel").innerHTML = "";
  showHead();
  resetChangeForm();
  try {
    await Promise.all([loadTranscript(), loadNotes(), loadPanel(), loadChanges()]);
  } catch (error) {
    showError("desk-error", error.message);
  }
}

async function openTicket(id) {
  try { await select(await api("GET", `/v1/tickets/${encodeURIComponent(id)}`)); }
  catch (error) { showError("desk-error", error.message); }
}

async function reloadCurrent() {
  if (!current) return;
  const id = current.id;
  const ticket = await api("GET", `/v1/tickets/${id}`);
  if (current && current.id === id) { current = ticket; showHead(); }
}

function showHead() {
  const t = current;
  $("ticket-title").textContent = `Ticket #${t.id} · ${customerName(t)}`;
  $("ticket-reason").textContent = t.reason + (t.summary ? " — " + t.summary : "");
  const state = t.status === "resolved" ? `Resolved${t.claimed_by ? " by " + t.claimed_by : ""} · ${when(t.resolved_at)}`
    : t.status === "claimed" ? `With ${t.claimed_by}` : "Waiting in the queue";
  $("ticket-state").innerHTML = `<span class="pill ${escapeHtml(t.status)}">${escapeHtml(t.status)}</span> ${channelPill(t)}
    <span class="muted">${escapeHtml(state)} · opened ${escapeHtml(when(t.created_at))}${t.channel === "email" ? " · replies go out by email" : ""}</span>`;
  const resolved = t.status === "resolved", left = customerLeft(t);
  const holding = t.status === "claimed" && me && (me.id !== null ? t.assignee_id === me.id : t.claimed_by === me.display_name);
  $("claim").disabled = resolved || holding;
  $("claim").textContent = holding ? "Claimed" : "Claim";
  $("resolve").disabled = resolved;
  $("reply-form").hidden = resolved || left;
  document.querySelector(".reply-tools").hidden = resolved || left;
  $("reply-closed").hidden = !(resolved || left);
  $("reply-closed").textContent = resolved
    ? "This ticket is resolved: the assistant has the conversation again."
    : `The customer ended the conversation (${when(t.customer_ended_at)}): replies no longer reach them. Resolve the ticket once any follow-up is done.`;
  fillAssign();
}

function fillAssign() {
  const t = current, select = $("assign");
  const options = [new Option("Unassigned", "")];
  for (const c of colleagues) options.push(new Option(c.display_name, String(c.id)));
  if (t.status === "claimed" && t.assignee_id === null && t.claimed_by) {
    const other = new Option(t.claimed_by + " (API key)", "key");  // claimed with an API key
    other.disabled = true;
    options.push(other);
  }
  select.replaceChildren(...options);
  select.value = t.status !== "claimed" ? "" : t.assignee_id !== null ? String(t.assignee_id) : "key";
  select.disabled = t.status === "resolved";
}

// The transcript, with the notices the customer saw ("Anna Berg joined the conversation.").
let shownTranscript = null;
async function loadTranscript() {
  if (!current) return;
  const conversationId = current.conversation_id;
  const data = await api("GET", "/v1/conversations/" + encodeURIComponent(conversationId));
  if (!current || current.conversation_id !== conversationId) return;  // another ticket now
  const drawn = JSON.stringify([data.messages, data.notices]);
  if (drawn === shownTranscript) return;
  shownTranscript = drawn;
  const box = $("transcript");
  const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 40 || !box.querySelector(".msg");
  const items = data.messages.map((m, i) => ({at: parseTime(m.created_at), i, m}))
    .concat((data.notices || []).map((n, i) => ({at: parseTime(n.created_at), i: 1e6 + i, n})))
    .sort((a, b) => (a.at - b.at) || (a.i - b.i));
  box.innerHTML = "";
  for (const {m, n} of items) {
    const div = document.createElement("div");
    if (n) {
      div.className = "msg system"; div.dataset.notice = n.id; div.textContent = n.text;
    } else {
      div.className = "msg " + m.role;
      div.dataset.message = m.id;
      const outcome = (t) => t.needs_verification ? " — waiting for the customer to verify"
        : t.waits ? " — identity checks paused" : t.is_error ? " — failed" : "";
      const tools = m.tool_calls.map((t) => `<div class="tool">${escapeHtml(t.label)}${outcome(t)}</div>`).join("");
      const who = m.role === "staff" ? `<div class="who">${escapeHtml(m.author || "staff")}</div>` : "";
      const change = m.action ? `<div class="tool">Order change: ${escapeHtml(changeStatus(m.action.status))}</div>` : "";
      div.innerHTML = who + tools + imagesHtml(m.images) + renderText(m.text, m.citations) + change
        + `<div class="stamp">${escapeHtml(when(m.created_at))}</div>`;
    }
    box.appendChild(div);
  }
  if (atEnd) box.scrollTop = box.scrollHeight;
}

async function act(fn) {
  showError("desk-error", "");
  try {
    const ticket = await fn();
    if (ticket && current && ticket.id === current.id) { current = ticket; showHead(); }
    soon("list", loadTickets, 0);
    soon("transcript", loadTranscript, 0);
  } catch (error) {
    showError("desk-error", error.message);
    if (current) soon("ticket", reloadCurrent, 0);
  }
}

$("claim").addEventListener("click", () => act(() => api("POST", `/v1/tickets/${current.id}/claim`)));
$("resolve").addEventListener("click", () => act(() => api("POST", `/v1/tickets/${current.id}/resolve`)));
$("assign").addEventListener("change", (e) => {
  const value = e.target.value;
  if (value === "key") return;
  act(() => api("POST", `/v1/tickets/${current.id}/assign`, {staff_id: value ? Number(value) : null}));
});
$("reply-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const box = $("reply"), send = $("send-reply");
  const text = box.value.trim();
  if (!text || send.disabled) return;
  send.disabled = true;
  act(async () => {
    try {
      await api("POST", `/v1/tickets/${current.id}/reply`, {text});
      box.value = "";
      return await api("GET", `/v1/tickets/${current.id}`);  // replying claims an open ticket
    } finally { send.disabled = false; }
  });
});
$("reply").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); $("reply-form").requestSubmit(); }
});

// -- saved replies ------------------------------------------------------------------------------

async function loadSavedReplies() {
  savedReplies = await api("GET", "/v1/saved-replies");
  const picker = $("saved-replies");
  picker.replaceChildren(new Option(savedReplies.length ? "Insert a saved reply…" : "No saved replies yet", ""),
    ...savedReplies.map((r) => new Option(r.title, String(r.id))));
  const list = $("saved-list");
  list.innerHTML = savedReplies.length ? "" : '<li class="muted">None yet: write a reply below, give it a title and save it.</li>';
  for (const r of savedReplies) {
    const item = document.createElement("li");
    item.dataset.reply = r.id;
    item.innerHTML = `<div><strong>${escapeHtml(r.title)}</strong> <span class="muted">by ${escapeHtml(r.created_by)}</span>
      <div class="muted preview">${escapeHtml(r.text)}</div></div>
      <button type="button" class="secondary small delete-reply" aria-label="Delete saved reply ${escapeHtml(r.title)}">Delete</button>`;
    item.querySelector("button").addEventListener("click", () => deleteSavedReply(r));
    list.appendChild(item);
  }
}

// A saved reply goes into the reply box to be edited (at the cursor, or after what is there).
$("saved-replies").addEventListener("change", (e) => {
  const reply = savedReplies.find((r) => String(r.id) === e.target.value);
  e.target.value = "";
  if (!reply) return;
  const box = $("reply");
  const start = box.selectionStart ?? box.value.length, end = box.selectionEnd ?? box.value.length;
  box.setRangeText(reply.text, start, end, "end");
  box.focus();
});

$("save-reply-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("reply").value.trim(), title = $("saved-title").value.trim();
  const result = $("saved-result");
  if (!text) { result.className = "error"; result.textContent = "Write the reply in the box first."; return; }
  if (!title) return;
  try {
    await api("POST", "/v1/saved-replies", {title, text});
    $("saved-title").value = "";
    result.className = "ok"; result.textContent = `Saved “${title}”.`;
    await loadSavedReplies();
  } catch (error) {
    result.className = "error"; result.textContent = error.message;
  }
});

async function deleteSavedReply(reply) {
  const result = $("saved-result");
  try {
    await api("DELETE", `/v1/saved-replies/${reply.id}`);
    result.className = "muted"; result.textContent = `Deleted “${reply.title}”.`;
  } catch (error) {
    result.className = "error"; result.textContent = error.message;
  }
  await loadSavedReplies().catch(() => {});
}

// -- internal notes -----------------------------------------------------------------------------

async function loadNotes() {
  if (!current) return;
  const id = current.id;
  const notes = await api("GET", `/v1/tickets/${id}/notes`);
  if (!current || current.id !== id) return;
  const list = $("note-list");
  list.innerHTML = notes.length ? "" : '<li class="muted">No notes yet.</li>';
  for (const n of notes) {
    const item = document.createElement("li");
    item.className = "note-item";
    item.dataset.note = n.id;
    item.innerHTML = `<div class="muted">${escapeHtml(n.author)} · ${escapeHtml(when(n.created_at))}</div>
      <div>${escapeHtml(n.text).replace(/\n/g, "<br>")}</div>`;
    list.appendChild(item);
  }
}

$("note-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const box = $("note"), button = $("add-note");
  const text = box.value.trim();
  if (!text || button.disabled || !current) return;
  button.disabled = true;
  showError("desk-error", "");
  try {
    await api("POST", `/v1/tickets/${current.id}/notes`, {text});
    box.value = "";
    await loadNotes();
  } catch (error) {
    showError("desk-error", "The note was not added: " + error.message);
  } finally {
    button.disabled = false;
  }
});

// -- the customer panel ---------------------------------------------------------------------------

async function loadPanel() {
  const panel = $("customer-panel");
  if (!current) return;
  const ticket = current;
  if (!ticket.customer_id) {
    panel.innerHTML = `<h2>Customer</h2><p class="muted">Not verified: the customer has not proved who they are,
      so nothing on file is shown.</p>`;
    return;
  }
  const c = await api("GET", "/v1/customers/" + encodeURIComponent(ticket.customer_id));
  if (!current || current.id !== ticket.id) return;
  const first = !panelData || panelData.id !== c.id;
  panelData = c;
  if (first) drawChangeInputs();
  const a = c.address || {};
  const address = [a.address1, a.address2, [a.city, a.state, a.zip].filter(Boolean).join(" "), a.country]
    .filter(Boolean).map(escapeHtml).join("<br>");
  const actionsHtml = (actions) => actions.length ? `<ul class="panel-actions">${actions.map((x) => `<li>
      <span class="pill ${escapeHtml(x.status)}">${escapeHtml(changeStatus(x.status))}</span> ${escapeHtml(x.summary)}
      <div class="muted">${escapeHtml(person(x.proposed_by))} · ${escapeHtml(when(x.created_at))}${x.decided_by && x.decided_by !== x.proposed_by ? " · decided by " + escapeHtml(person(x.decided_by)) : ""}</div></li>`).join("")}</ul>` : "";
  const orders = c.orders.map((o) => `<li class="panel-order" data-order="${escapeHtml(o.order_id)}">
      <div><strong>${escapeHtml(o.order_id)}</strong> <span class="pill ${escapeHtml(o.status)}">${escapeHtml(o.status)}</span></div>
      <div class="muted">${escapeHtml(o.item_count)} item${o.item_count === 1 ? "" : "s"} · ${escapeHtml(o.total)}</div>
      ${actionsHtml(o.actions)}</li>`).join("");
  const conversations = c.conversations.map((v) => `<li class="panel-conversation${v.id === ticket.conversation_id ? " this" : ""}">
      <div>${escapeHtml(when(v.created_at))} · ${escapeHtml(v.channel)} · ${escapeHtml(v.messages)} message${v.messages === 1 ? "" : "s"}
        ${v.id === ticket.conversation_id ? '<span class="pill">this one</span>' : `<span class="pill ${escapeHtml(v.state)}">${escapeHtml(v.state)}</span>`}</div>
      ${v.tickets.map((t) => `<div class="muted"><button type="button" class="link open-ticket" data-ticket="${escapeHtml(t.id)}">#${escapeHtml(t.id)}</button>
        ${escapeHtml(t.status)}${t.claimed_by ? " · " + escapeHtml(t.claimed_by) : ""} · ${escapeHtml(t.reason)}</div>`).join("")}</li>`).join("");
  panel.innerHTML = `<h2>Customer</h2>
    <div class="identity">
      <div><strong>${escapeHtml(c.name)}</strong> <span class="pill verified">verified</span></div>
      <div>${escapeHtml(c.email)}</div>
      <div class="muted">${escapeHtml(c.id)} · zip ${escapeHtml(c.zip_code)}</div>
      ${address ? `<div class="muted">${address}</div>` : ""}
    </div>
    <h3>Orders${c.order_system && c.order_system !== "built-in" ? ` <span class="muted">(${escapeHtml(c.order_system)})</span>` : ""}</h3>
    ${c.orders_error ? `<div class="error">${escapeHtml(c.orders_error)}</div>` : ""}
    <ul id="panel-orders" class="panel-list">${orders || '<li class="muted">No orders on file.</li>'}</ul>
    ${c.account_actions.length ? `<h3>Account changes</h3>${actionsHtml(c.account_actions)}` : ""}
    <h3>Conversations</h3>
    <ul id="panel-conversations" class="panel-list">${conversations || '<li class="muted">None.</li>'}</ul>`;
  for (const button of panel.querySelectorAll(".open-ticket")) {
    button.addEventListener("click", () => openTicket(button.dataset.ticket));
  }
}

// -- order changes: what the assistant proposed (and how each ended), and what staff ran ----

// The store-changing tools, as the server lists them (GET /v1/changes): the form is built from
// each one's JSON Schema, with pickers fed by the customer panel (orders and their items,
// payment methods) and the product's variants, so staff never type an id they cannot see.
let changeKinds = [];
let panelData = null;  // the customer panel last drawn
const variantsOf = new Map();  // product id -> its variants (GET /v1/products/{id})

let shownChanges = null;  // the list as last drawn: redrawn only when it changes

function changeStatus(status) {
  if (status === "proposed") return "waiting for the customer";
  return status === "unknown" ? "outcome unknown: check the shop's system" : status;
}

function changeHtml(a) {
  const status = changeStatus(a.status);
  let who;
  if (a.proposed_by.startsWith("staff:") && a.proposed_by === a.decided_by) {
    who = `Run by ${escapeHtml(person(a.decided_by))} · ${when(a.decided_at)}`;
  } else {
    who = `Proposed by ${escapeHtml(person(a.proposed_by))} · ${when(a.created_at)}`;
    if (a.decided_by) who += ` · decided by ${escapeHtml(person(a.decided_by))} · ${when(a.decided_at)}`;
    else if (a.status === "proposed") who += ` · expires ${when(a.expires_at)}`;
  }
  const reason = (a.status === "failed" || a.status === "unknown") && a.result ? `<div class="error">${escapeHtml(a.result)}</div>` : "";
  const differs = a.discrepancy ? `<div class="error">The shop's system did something else: ${escapeHtml(a.discrepancy)}</div>` : "";
  const details = escapeHtml(`${a.tool} ${JSON.stringify(a.arguments, null, 2)}` + (a.result ? `\n\nResult: ${a.result}` : "")
    + (a.system_reply ? `\n\nThe shop's system answered: ${a.system_reply}` : ""));
  return `<div><span class="pill ${escapeHtml(a.status)}">${escapeHtml(status)}</span> ${escapeHtml(a.summary)}</div>
    <div class="muted">${who}</div>${reason}${differs}
    <details><summary>Details</summary><pre>${details}</pre></details>`;
}

async function loadChanges() {
  if (!current) return;
  const conversationId = current.conversation_id;
  const actions = await api("GET", "/v1/actions?conversation_id=" + encodeURIComponent(conversationId));
  if (!current || current.conversation_id !== conversationId) return;
  const drawn = conversationId + JSON.stringify(actions);
  if (drawn === shownChanges) return;  // keeps an open "Details" open
  shownChanges = drawn;
  const list = $("change-list");
  list.innerHTML = actions.length ? "" : '<li class="muted">No order changes in this conversation.</li>';
  for (const a of actions) {
    const item = document.createElement("li");
    item.className = "change";
    item.dataset.action = a.id;
    item.innerHTML = changeHtml(a);
    list.appendChild(item);
  }
}

function resetChangeForm() {
  const result = $("change-result");
  result.textContent = ""; result.className = "";
  const verified = Boolean(current && current.customer_id);
  $("change-fields").disabled = !verified;
  $("change-for").textContent = verified
    ? `Run a change for ${current.customer ? current.customer.name : current.customer_id} (${current.customer_id}) now: the store's rules apply.`
    : "The customer is not verified: no order change can be run for them from here.";
  shownChanges = null;
  panelData = null;
  $("change-list").innerHTML = "";
  drawChangeInputs();
  if (!changeKinds.length) loadChangeKinds().catch((error) => console.warn("changes", error));
}

async function loadChangeKinds() {
  changeKinds = await api("GET", "/v1/changes");
  $("change-tool").innerHTML = changeKinds.map((c) =>
    `<option value="${escapeHtml(c.name)}">${escapeHtml(c.title)}</option>`).join("");
  drawChangeInputs();
}

function option(value, label, selected) {
  return `<option value="${escapeHtml(value)}"${selected ? " selected" : ""}>${escapeHtml(label)}</option>`;
}

function options(o) { return Object.entries(o || {}).map(([k, v]) => `${k} ${v}`).join(", "); }

function methodLabel(m) {
  if (m.kind === "credit_card") return `${m.brand || "card"} ending in ${m.last_four}`;
  if (m.kind === "gift_card") return `gift card (balance ${m.balance})`;
  return m.kind === "paypal" ? "PayPal" : m.kind;
}

// What the form holds now, by argument name (kept across redraws).
function changeValues() {
  const values = {};
  for (const el of $("change-inputs").querySelectorAll("[data-arg]")) {
    const name = el.dataset.arg;
    if (el.type === "checkbox") {
      values[name] = values[name] || [];
      if (el.checked) values[name].push(el.value);
    } else if (el.dataset.each !== undefined) {
      values[name] = values[name] || [];
      values[name][Number(el.dataset.each)] = el.value;
    } else {
      values[name] = el.value;
    }
  }
  return values;
}

// One field per argument of the chosen change, from its schema.
function drawChangeInputs() {
  const box = $("change-inputs");
  const kind = changeKinds.find((c) => c.name === $("change-tool").value);
  $("change-about").textContent = kind ? kind.description : "";
  if (!kind) { box.innerHTML = ""; return; }
  const kept = changeValues();
  const props = kind.input_schema.properties || {};
  const required = new Set(kind.input_schema.required || []);
  const orders = (panelData && panelData.orders) || [];
  const methods = (panelData && panelData.payment_methods) || [];
  const order = orders.find((o) => o.order_id === kept.order_id) || orders[0];
  const chosenItems = kept.item_ids || [];
  const html = [];
  for (const [name, schema] of Object.entries(props)) {
    const id = "change-arg-" + name;
    const label = name.replace(/_/g, " ") + (required.has(name) ? "" : " (optional)");
    if (name === "order_id") {
      html.push(`<label for="${id}">Order</label><select id="${id}" data-arg="order_id">${orders.map((o) =>
        option(o.order_id, `${o.order_id} · ${o.status} · ${o.total}`, order && o.order_id === order.order_id)).join("")}</select>`);
    } else if (name === "item_ids") {
      const lines = order ? order.items : [];
      html.push(`<fieldset class="bare picks"><legend>Items</legend>${lines.map((it, i) =>
        `<label class="pick"><input type="checkbox" data-arg="item_ids" data-line="${i}" value="${escapeHtml(it.item_id)}"${chosenItems.includes(it.item_id) ? " checked" : ""}>
          <span>${escapeHtml(it.name)} <span class="muted">(${escapeHtml(options(it.options))}) ${escapeHtml(it.price)} · ${escapeHtml(it.item_id)}</span></span></label>`).join("")
        || '<p class="muted">No items.</p>'}</fieldset>`);
    } else if (name === "new_item_ids") {
      html.push(`<fieldset class="bare picks" id="change-new-items"><legend>New options, for each item chosen</legend>
        <p class="muted">Choose the items first.</p></fieldset>`);
    } else if (name === "payment_method_id") {
      html.push(`<label for="${id}">Payment method</label><select id="${id}" data-arg="payment_method_id">${methods.map((m) =>
        option(m.payment_method_id, `${methodLabel(m)} · ${m.payment_method_id}`, m.payment_method_id === kept.payment_method_id)).join("")}</select>`);
    } else if (schema.enum) {
      html.push(`<label for="${id}">${escapeHtml(label)}</label><select id="${id}" data-arg="${escapeHtml(name)}">${schema.enum.map((v) =>
        option(v, v, v === kept[name])).join("")}</select>`);
    } else {
      const value = kept[name] !== undefined ? kept[name] : "";
      const max = schema.maxLength ? ` maxlength="${Number(schema.maxLength)}"` : "";
      html.push(`<label for="${id}">${escapeHtml(label)}</label><input id="${id}" data-arg="${escapeHtml(name)}"${max} value="${escapeHtml(value)}">`);
    }
  }
  box.innerHTML = html.join("");
  for (const el of box.querySelectorAll('[data-arg="order_id"], [data-arg="item_ids"]')) {
    el.addEventListener("change", () => (el.dataset.arg === "order_id" ? drawChangeInputs() : drawNewItems()));
  }
  drawNewItems(kept.new_item_ids || []);
}

// For each item chosen, the other variants of its product (available ones first).
async function drawNewItems(kept = null) {
  const box = $("change-new-items");
  if (!box) return;
  const before = kept || changeValues().new_item_ids || [];
  const order = ((panelData && panelData.orders) || []).find((o) => o.order_id === changeValues().order_id);
  const checked = [...$("change-inputs").querySelectorAll('[data-arg="item_ids"]:checked')];
  const lines = checked.map((el) => order.items[Number(el.dataset.line)]);
  for (const line of lines) {
    if (!variantsOf.has(line.product_id)) {
      const product = await api("GET", "/v1/products/" + encodeURIComponent(line.product_id)).catch(() => null);
      variantsOf.set(line.product_id, product ? product.variants : []);  // not in the catalog: none
    }
  }
  if ($("change-new-items") !== box) return;  // redrawn meanwhile
  box.innerHTML = '<legend>New options, for each item chosen</legend>' + (lines.map((line, i) => {
    const variants = variantsOf.get(line.product_id).filter((v) => v.item_id !== line.item_id);
    return `<label for="change-new-${i}">${escapeHtml(line.name)} (${escapeHtml(options(line.options))}) →</label>
      <select id="change-new-${i}" data-arg="new_item_ids" data-each="${i}">${variants.map((v) =>
        option(v.item_id, `${options(v.options)} · ${v.price}${v.available ? "" : " · not available"}`, v.item_id === before[i])).join("")}</select>`;
  }).join("") || '<p class="muted">Choose the items first.</p>');
}

$("change-tool").addEventListener("change", () => drawChangeInputs());

$("change-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const run = $("change-run");
  const result = $("change-result");
  if (run.disabled || !current || !current.customer_id) return;
  const args = changeValues();
  run.disabled = true;
  result.className = "muted"; result.textContent = "Running…";
  try {
    const action = await api("POST", `/v1/customers/${encodeURIComponent(current.customer_id)}/actions`, {
      tool: $("change-tool").value, arguments: args, conversation_id: current.conversation_id,
    });
    if (action.status === "executed") {
      result.className = "ok"; result.textContent = "Executed: " + action.summary;
    } else if (action.status === "unknown") {
      result.className = "error";
      result.textContent = "Sent, but the shop's system never confirmed it: check there before trying again.";
    } else {
      result.className = "error"; result.textContent = "Failed: " + (action.result || action.summary);
    }
  } catch (error) {
    result.className = "error"; result.textContent = "Not run: " + error.message;
  } finally {
    run.disabled = false;
  }
  await Promise.all([loadChanges(), loadPanel()]).catch(() => {});
  drawChangeInputs();
});

if (token) { $("login").hidden = true; open(); }
