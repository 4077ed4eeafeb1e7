// Shared by the chat and staff pages: safe rendering and server-sent events over fetch.
"use strict";

// Only web links become clickable; anything else (javascript:, data:) stays plain text.
function safeUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
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

// POST (JSON, or FormData for photos) and read a text/event-stream response.
async function postEvents(url, headers, body, onEvent) {
  const form = body instanceof FormData;
  const response = await fetch(url, {
    method: "POST",
    headers: form ? {...headers, "Accept": "text/event-stream"}
                  : {...headers, "Content-Type": "application/json", "Accept": "text/event-stream"},
    body: form ? body : JSON.stringify(body),
  });
  if (!response.ok) {
    const error = await response.json().catch(() => ({error: {message: response.statusText}}));
    const failure = new Error(error.error ? error.error.message : response.statusText);
    failure.status = response.status;
    failure.code = error.error ? error.error.code : "";
    throw failure;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    // Normalise line ends over the whole buffer: a chunk may end between "\r" and "\n".
    buffer = (buffer + decoder.decode(value, {stream: true})).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const raw = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message", data = "";
      for (const line of raw.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) onEvent(name, JSON.parse(data));
    }
  }
}
