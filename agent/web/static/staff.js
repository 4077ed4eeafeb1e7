// The staff desk: open tickets, the conversation, claim / reply / resolve, order changes.
"use strict";

let key = sessionStorage.getItem("supportbot.adminKey");
let current = null;

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: {"Authorization": "Bearer " + key, ...(body ? {"Content-Type": "application/json"} : {})},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
  return data;
}

function showError(id, message) {
  const el = document.getElementById(id);
  el.textContent = message || ""; el.hidden = !message;
}

async function loadTickets() {
  const tickets = (await api("GET", "/v1/tickets")).filter((t) => t.status !== "resolved");
  const list = document.getElementById("tickets");
  list.innerHTML = tickets.length ? "" : '<p class="muted">No open tickets.</p>';
  for (const t of tickets) {
    const item = document.createElement("button");
    item.type = "button";
    item.className = "ticket" + (current && current.id === t.id ? " selected" : "");
    item.dataset.ticket = t.id;
    item.innerHTML = `<strong>#${t.id}</strong> ${escapeHtml(t.customer ? t.customer.name : "Unverified customer")}
      <span class="pill">${escapeHtml(t.status)}${t.claimed_by ? " · " + escapeHtml(t.claimed_by) : ""}</span>
      <div class="muted">${escapeHtml(t.reason)}</div>`;
    item.addEventListener("click", () => select(t));
    list.appendChild(item);
  }
  if (current) {
    const fresh = tickets.find((t) => t.id === current.id);
    if (fresh) current = fresh;
  }
}

async function select(ticket) {
  current = ticket;
  document.getElementById("detail").hidden = false;
  document.getElementById("ticket-title").textContent = `Ticket #${ticket.id}` + (ticket.customer ? " · " + ticket.customer.name : "");
  document.getElementById("ticket-reason").textContent = ticket.reason + " — " + ticket.summary;
  resetChangeForm();
  await loadTranscript();
  await loadTickets();
}

async function loadTranscript() {
  if (!current) return;
  const data = await api("GET", "/v1/conversations/" + current.conversation_id);
  const box = document.getElementById("transcript");
  box.innerHTML = "";
  for (const m of data.messages) {
    const div = document.createElement("div");
    div.className = "msg " + m.role;
    const tools = m.tool_calls.map((t) => `<div class="tool">${escapeHtml(t.label)}${t.is_error ? " — failed" : ""}</div>`).join("");
    const who = m.role === "staff" ? `<div class="who">${escapeHtml(m.author || "staff")}</div>` : "";
    const change = m.action ? `<div class="tool">Order change: ${escapeHtml(changeStatus(m.action.status))}</div>` : "";
    div.innerHTML = who + tools + imagesHtml(m.images) + renderText(m.text, m.citations) + change;
    box.appendChild(div);
  }
  box.scrollTop = box.scrollHeight;
  await loadChanges();
}

// -- order changes: what the assistant proposed (and how each ended), and what staff ran ----

// Argument templates of the store-changing tools (the tools' own parameters).
const CHANGE_TEMPLATES = {
  cancel_pending_order: {order_id: "", reason: "no longer needed"},
  modify_pending_order_address: {order_id: "", address1: "", address2: "", city: "", state: "", country: "", zip: ""},
  modify_pending_order_items: {order_id: "", item_ids: [], new_item_ids: [], payment_method_id: ""},
  modify_pending_order_payment: {order_id: "", payment_method_id: ""},
  modify_user_address: {address1: "", address2: "", city: "", state: "", country: "", zip: ""},
  return_delivered_order_items: {order_id: "", item_ids: [], payment_method_id: ""},
  exchange_delivered_order_items: {order_id: "", item_ids: [], new_item_ids: [], payment_method_id: ""},
};
let shownChanges = null;  // the list as last drawn: redrawn only when it changes

function template(tool) { return JSON.stringify(CHANGE_TEMPLATES[tool] || {}, null, 2); }

function person(who) {
  if (!who) return "";
  if (who === "assistant" || who === "customer") return "the " + who;
  const at = who.indexOf(":");
  if (at < 0) return who;
  const kind = who.slice(0, at), name = who.slice(at + 1);
  return kind === "staff" ? name : `${name} (${kind})`;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString([], {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"}) : "";
}

function changeStatus(status) { return status === "proposed" ? "waiting for the customer" : status; }

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
  const reason = a.status === "failed" && a.result ? `<div class="error">${escapeHtml(a.result)}</div>` : "";
  const details = escapeHtml(`${a.tool} ${JSON.stringify(a.arguments, null, 2)}` + (a.result ? `\n\nResult: ${a.result}` : ""));
  return `<div><span class="pill ${escapeHtml(a.status)}">${escapeHtml(status)}</span> ${escapeHtml(a.summary)}</div>
    <div class="muted">${who}</div>${reason}
    <details><summary>Details</summary><pre>${details}</pre></details>`;
}

async function loadChanges() {
  if (!current) return;
  const actions = await api("GET", "/v1/actions?conversation_id=" + encodeURIComponent(current.conversation_id));
  const drawn = current.conversation_id + JSON.stringify(actions);
  if (drawn === shownChanges) return;  // keeps an open "Details" open while the desk polls
  shownChanges = drawn;
  const list = document.getElementById("change-list");
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
  const tool = document.getElementById("change-tool");
  const result = document.getElementById("change-result");
  result.textContent = ""; result.className = "";
  document.getElementById("change-args").value = template(tool.value);
  const verified = Boolean(current && current.customer_id);
  document.getElementById("change-fields").disabled = !verified;
  document.getElementById("change-for").textContent = verified
    ? `Run a change for ${current.customer ? current.customer.name : current.customer_id} (${current.customer_id}) now: the store's rules apply.`
    : "The customer is not verified: no order change can be run for them from here.";
  shownChanges = null;
  document.getElementById("change-list").innerHTML = "";
}

document.getElementById("change-tool").addEventListener("change", (e) => {
  const args = document.getElementById("change-args");
  // Swap in the new tool's template unless arguments were typed for the old one.
  const untouched = !args.value.trim() || Object.keys(CHANGE_TEMPLATES).some((t) => args.value === template(t));
  if (untouched) args.value = template(e.target.value);
});

document.getElementById("change-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const run = document.getElementById("change-run");
  const result = document.getElementById("change-result");
  if (run.disabled || !current || !current.customer_id) return;
  let args;
  try {
    const text = document.getElementById("change-args").value.trim();
    args = text ? JSON.parse(text) : {};
    if (typeof args !== "object" || args === null || Array.isArray(args)) throw new Error("expected an object");
  } catch (error) {
    result.className = "error"; result.textContent = "The arguments must be a JSON object: " + error.message;
    return;
  }
  run.disabled = true;
  result.className = "muted"; result.textContent = "Running…";
  try {
    const action = await api("POST", `/v1/customers/${encodeURIComponent(current.customer_id)}/actions`, {
      tool: document.getElementById("change-tool").value, arguments: args, conversation_id: current.conversation_id,
    });
    if (action.status === "executed") {
      result.className = "ok"; result.textContent = "Executed: " + action.summary;
    } else {
      result.className = "error"; result.textContent = "Failed: " + (action.result || action.summary);
    }
  } catch (error) {
    result.className = "error"; result.textContent = "Not run: " + error.message;
  } finally {
    run.disabled = false;
  }
  await loadChanges().catch(() => {});
});

async function act(fn) {
  showError("desk-error", "");
  try { await fn(); await loadTickets(); await loadTranscript(); }
  catch (error) { showError("desk-error", error.message); }
}

document.getElementById("claim").addEventListener("click", () => act(() => api("POST", `/v1/tickets/${current.id}/claim`)));
document.getElementById("resolve").addEventListener("click", () => act(async () => {
  await api("POST", `/v1/tickets/${current.id}/resolve`);
  current = null; document.getElementById("detail").hidden = true;
}));
document.getElementById("reply-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const box = document.getElementById("reply");
  const text = box.value.trim();
  if (!text) return;
  act(async () => { await api("POST", `/v1/tickets/${current.id}/reply`, {text}); box.value = ""; });
});

async function open() {
  try {
    await loadTickets();
    document.getElementById("login").hidden = true;
    document.getElementById("desk").hidden = false;
    setInterval(() => loadTickets().then(loadTranscript).catch(() => {}), 3000);
  } catch (error) {
    sessionStorage.removeItem("supportbot.adminKey");
    showError("login-error", error.message);
  }
}

document.getElementById("login").addEventListener("submit", (e) => {
  e.preventDefault();
  key = document.getElementById("key").value.trim();
  sessionStorage.setItem("supportbot.adminKey", key);
  open();
});
if (key) open();
