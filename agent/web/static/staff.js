// The staff desk: open tickets, the conversation, claim / reply / resolve.
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
    div.innerHTML = who + tools + imagesHtml(m.images) + renderText(m.text, m.citations);
    box.appendChild(div);
  }
  box.scrollTop = box.scrollHeight;
}

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
