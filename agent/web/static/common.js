// Shared by the chat and staff pages: safe rendering, server-sent events over fetch, and the
// staff pages' sign-in (the desk's and the report's).
"use strict";

// Only web links become clickable; anything else (javascript:, data:) stays plain text.
function safeUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

// Escaped text with **bold**, line breaks and [n] citation links.
function renderText(text, citations) {
  const byNumber = new Map((citations || []).map((c) => [String(c.number), c]));
  let html = escapeHtml(text).replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>").replace(/\n/g, "<br>");
  return html.replace(/\[(\d{1,3})\]/g, (match, n) => {
    const c = byNumber.get(n);
    if (!c) return match;
    const title = escapeHtml(c.title + (c.section ? " › " + c.section : ""));
    return safeUrl(c.url)
      ? `<a class="cite" href="${escapeHtml(c.url)}" target="_blank" rel="noopener" title="${title}">[${n}]</a>`
      : `<span class="cite" title="${title}">[${n}]</span>`;
  });
}

// Images of a transcript entry (data: URLs from the server).
function imagesHtml(images) {
  return (images || []).filter((i) => /^data:image\/(jpeg|png|webp|gif);base64,/.test(i.url))
    .map((i) => `<img class="photo-thumb" src="${i.url}" alt="Photo from the customer">`).join("");
}

// Times from the API: SQLite gives them back without a zone, and they are UTC.
function parseTime(iso) {
  if (!iso) return null;
  return new Date(/(Z|[+-]\d\d:?\d\d)$/.test(iso) ? iso : iso + "Z");
}

// An error from a JSON API response: its message, HTTP status and error code.
async function responseError(response) {
  const error = await response.json().catch(() => ({error: {message: response.statusText}}));
  const failure = new Error(error.error ? error.error.message : response.statusText || "HTTP " + response.status);
  failure.status = response.status;
  failure.code = error.error ? error.error.code : "";
  return failure;
}

// Read a text/event-stream body: onEvent(name, data, id) for each event that has data.
// `onChunk` (optional) hears every chunk, comments (": ping") included.
async function readEventStream(response, onEvent, onChunk) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    if (onChunk) onChunk();
    // Normalise line ends over the whole buffer: a chunk may end between "\r" and "\n".
    buffer = (buffer + decoder.decode(value, {stream: true})).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const raw = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message", data = "", id = null;
      for (const line of raw.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data += (data ? "\n" : "") + line.slice(5).trim();
        else if (line.startsWith("id:")) id = line.slice(3).trim();
      }
      if (data) onEvent(name, JSON.parse(data), id);
    }
  }
}

// POST (JSON, or FormData for photos) and read a text/event-stream response.
async function postEvents(url, headers, body, onEvent) {
  const form = body instanceof FormData;
  const response = await fetch(url, {
    method: "POST",
    headers: form ? {...headers, "Accept": "text/event-stream"}
                  : {...headers, "Content-Type": "application/json", "Accept": "text/event-stream"},
    body: form ? body : JSON.stringify(body),
  });
  if (!response.ok) throw await responseError(response);
  await readEventStream(response, onEvent);
}

// Follow a live feed of server-sent events with fetch (EventSource cannot send headers).
// The server ends a stream every few minutes, and a network may drop it: either way it is
// opened again after a short back-off with Last-Event-ID, so no event is missed.
//   options.headers(): the request's headers (read at each connection)
//   options.onEvent(name, data, id); options.onOpen() once a stream is open
//   options.onFatal(error): 401, 403 or 404: following stops (signed out, gone)
// Returns {stop()}.
const FEED_SILENCE_MS = 45000;  // the server pings every 15 s: a silent stream is a dead one

function followEvents(url, options) {
  let lastId = null, stopped = false, control = null, failures = 0;
  const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

  async function connect() {
    control = new AbortController();
    let watchdog = null;
    const alive = () => {
      clearTimeout(watchdog);
      const current = control;
      watchdog = setTimeout(() => current.abort(), FEED_SILENCE_MS);
    };
    try {
      const headers = {...options.headers(), "Accept": "text/event-stream"};
      if (lastId !== null) headers["Last-Event-ID"] = String(lastId);
      alive();
      const response = await fetch(url, {headers, signal: control.signal, cache: "no-store"});
      if (!response.ok) throw await responseError(response);
      failures = 0;
      if (options.onOpen) options.onOpen();
      await readEventStream(response, (name, data, id) => {
        if (stopped) return;
        if (id !== null && id !== "") lastId = id;
        else if (name === "ready" && data && data.last_event_id !== undefined) lastId = data.last_event_id;
        options.onEvent(name, data, id);
      }, alive);
    } finally {
      clearTimeout(watchdog);
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await connect();
      } catch (error) {
        if (stopped) return;
        if ([401, 403, 404].includes(error.status)) {
          stopped = true;
          if (options.onFatal) options.onFatal(error);
          return;
        }
        failures += 1;
        if (options.onDrop) options.onDrop(error);
      }
      if (stopped) return;
      // A stream the server ended: again at once (nearly); a failure: 1 s, 2 s, 4 s … 15 s.
      await sleep(failures ? Math.min(1000 * 2 ** (failures - 1), 15000) : 200);
    }
  })();

  return {
    stop() { stopped = true; if (control) control.abort(); },
    get lastEventId() { return lastId; },
  };
}

// -- the staff pages' sign-in (the desk and the report) ---------------------------------------

// A desk sign-in token or an admin API key: either is sent as the bearer token, and signing in
// on one staff page signs in on the other (the tab's session).
const STAFF_TOKEN = "supportbot.adminKey";

function showError(id, message) {
  const el = document.getElementById(id);
  el.textContent = message || ""; el.hidden = !message;
}

// The sign-in form (#login): a staff account (#username, #password) by default, an admin API
// key (#key) as the other option (#use-key). On submit the token is kept in sessionStorage and
// handed to onToken (awaited); a failure shows in #login-error.
//   options.keyLabel: the submit button's text with a key ("Open the desk")
//   options.onToken(token)
function staffSignIn(options) {
  const el = (id) => document.getElementById(id);
  let keyMode = false;

  function setKeyMode(on) {
    keyMode = on;
    el("account-fields").hidden = on;
    el("key-fields").hidden = !on;
    el("username").required = !on; el("password").required = !on;
    el("key").required = on;
    el("use-key").textContent = on ? "Sign in with a staff account instead" : "Use an admin API key instead";
    el("sign-in").textContent = on ? options.keyLabel : "Sign in";
    showError("login-error", "");
    (on ? el("key") : el("username")).focus();
  }
  el("use-key").addEventListener("click", () => setKeyMode(!keyMode));

  el("login").addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = el("sign-in");
    if (button.disabled) return;
    showError("login-error", "");
    button.disabled = true;
    try {
      let token;
      if (keyMode) {
        token = el("key").value.trim();
      } else {
        const response = await fetch("/v1/staff/sessions", {
          method: "POST", headers: {"Content-Type": "application/json"},
          body: JSON.stringify({username: el("username").value.trim(), password: el("password").value}),
        });
        if (!response.ok) throw await responseError(response);
        token = (await response.json()).token;
      }
      sessionStorage.setItem(STAFF_TOKEN, token);
      el("password").value = ""; el("key").value = "";
      await options.onToken(token);
    } catch (error) {
      showError("login-error", error.message);
    } finally {
      button.disabled = false;
    }
  });

  setKeyMode(false);
}
