// The end of a conversation in the web chat: "I'm done" closes it (POST .../end), and the chat
// asks for a rating (thumbs up or down, an optional comment: POST .../rating), as it does when
// a person resolves a hand-off. A later rating replaces the first. Loaded before chat.js, which
// calls onConversationState from showState.
"use strict";

const doneButton = document.getElementById("done");
let shownState = null;  // the conversation's state as last shown

// chat.js's showState calls this with every state it shows ("bot", "human", "closed").
function onConversationState(state) {
  doneButton.hidden = !conversation || state === "closed";
  if (state === "closed") {
    closeChat();
    askForRating();
  } else if (shownState === "human" && state === "bot") {
    // The notice just above ("Anna Berg has resolved this conversation; …") says what happened.
    askForRating("How did we do?");
  }
  shownState = state;
}

function closeChat() {
  for (const el of [input, sendButton, photos]) el.disabled = true;
  humanButton.hidden = true;
  input.placeholder = "This conversation has ended.";
  if (!document.getElementById("restart")) {
    const restart = document.createElement("button");
    restart.id = "restart"; restart.type = "button"; restart.className = "secondary";
    restart.textContent = "Start a new conversation";
    restart.addEventListener("click", () => {
      sessionStorage.removeItem("supportbot.conversation");
      location.reload();
    });
    form.replaceChildren(restart);
  }
}

async function endConversation() {
  if (!conversation || doneButton.disabled) return;
  doneButton.disabled = true;
  try {
    const response = await fetch(`/v1/conversations/${conversation.id}/end`, {method: "POST", headers: headers()});
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
    showState(data.state);
  } catch (error) {
    showNotice("Sorry, that didn't go through: " + error.message);
  } finally {
    doneButton.disabled = false;
  }
}

// The rating card at the end of the log (one per page; a later prompt reuses it).
function askForRating(question) {
  let card = log.querySelector(".rating");
  if (card) { log.appendChild(card); scroll(); return card; }
  card = document.createElement("div");
  card.className = "msg assistant rating";
  card.setAttribute("role", "group");
  card.setAttribute("aria-label", "Rate this conversation");
  card.innerHTML = `<div class="question"></div>
    <div class="thumbs">
      <button type="button" class="up" data-score="up" aria-pressed="false" title="Thumbs up">👍 Helpful</button>
      <button type="button" class="down" data-score="down" aria-pressed="false" title="Thumbs down">👎 Not helpful</button>
    </div>
    <textarea class="comment" rows="2" maxlength="2000" placeholder="Anything you'd like to add? (optional)" aria-label="Comment"></textarea>
    <div><button type="button" class="send-rating" disabled>Send feedback</button></div>
    <div class="sent" role="status" aria-live="polite"></div>`;
  card.querySelector(".question").textContent = question || "Thanks for chatting with us! How did we do?";
  for (const thumb of card.querySelectorAll(".thumbs button")) {
    thumb.addEventListener("click", () => {
      for (const other of card.querySelectorAll(".thumbs button")) other.setAttribute("aria-pressed", String(other === thumb));
      card.querySelector(".send-rating").disabled = false;
    });
  }
  card.querySelector(".send-rating").addEventListener("click", () => sendRating(card));
  log.appendChild(card);
  scroll();
  showRating(card);
  return card;
}

// A rating given before (after a reload): shown as it was sent. The API answers null while
// there is none.
async function showRating(card) {
  const response = await fetch(`/v1/conversations/${conversation.id}/rating`, {headers: headers()});
  if (!response.ok) return;
  const rating = await response.json();
  if (!rating) return;
  for (const thumb of card.querySelectorAll(".thumbs button")) thumb.setAttribute("aria-pressed", String(thumb.dataset.score === rating.score));
  card.querySelector(".comment").value = rating.comment || "";
  rated(card);
}

function rated(card) {
  card.classList.add("rated");
  card.querySelector(".sent").textContent = "Thanks for your feedback!";
  const send = card.querySelector(".send-rating");
  send.textContent = "Update feedback"; send.disabled = false;
}

async function sendRating(card) {
  const chosen = card.querySelector('.thumbs button[aria-pressed="true"]');
  const send = card.querySelector(".send-rating");
  if (!chosen || send.disabled) return;
  send.disabled = true;
  const comment = card.querySelector(".comment").value.trim();
  try {
    const response = await fetch(`/v1/conversations/${conversation.id}/rating`, {
      method: "POST", headers: {...headers(), "Content-Type": "application/json"},
      body: JSON.stringify(comment ? {score: chosen.dataset.score, comment} : {score: chosen.dataset.score}),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
    rated(card);
  } catch (error) {
    card.querySelector(".sent").textContent = "Sorry, that didn't go through: " + error.message;
    send.disabled = false;
  }
}

doneButton.addEventListener("click", endConversation);
