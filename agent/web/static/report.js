// The staff desk's report: outcomes, hand-off reasons, satisfaction, speed and cost, with charts
// (Chart.js, served from /static/vendor: no CDN). It signs in as the desk does (common.js): a
// staff account or an admin API key, and either page's sign-in opens the other.
"use strict";

let key = sessionStorage.getItem(STAFF_TOKEN);
const charts = {};
const REASON_LABELS = {
  customer_asked: "Customer asked", tool_cap: "Tool-round cap", refusal: "Refusal",
  identity_locked: "Identity check locked", model_unavailable: "Model unavailable", needs_person: "Needs a person",
};
const COLORS = {resolved: "#1b7f47", handed_off: "#2457c5", abandoned: "#b42318", ongoing: "#98a2b3", satisfaction: "#d97706"};

function percent(value) { return value === null || value === undefined ? "–" : Math.round(value * 100) + "%"; }
function money(value) { return value === null || value === undefined ? "–" : "$" + value.toFixed(4); }
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 1) return "< 1 s";
  if (seconds < 90) return Math.round(seconds) + " s";
  if (seconds < 90 * 60) return Math.round(seconds / 60) + " min";
  return (seconds / 3600).toFixed(1) + " h";
}

async function fetchReport() {
  const params = new URLSearchParams({by: document.getElementById("by").value});
  const since = document.getElementById("since").value;
  if (since) params.set("since", since);
  const response = await fetch("/v1/reports/summary?" + params, {headers: {"Authorization": "Bearer " + key}});
  if (!response.ok) throw await responseError(response);
  return response.json();
}

function card(label, value, detail, name) {
  return `<div class="figure" data-figure="${name}"><div class="muted">${escapeHtml(label)}</div>
    <div class="value">${escapeHtml(value)}</div><div class="muted">${escapeHtml(detail || "")}</div></div>`;
}

function drawCards(total) {
  document.getElementById("cards").innerHTML = [
    card("Conversations", String(total.conversations), `${total.ongoing} ongoing`, "conversations"),
    card("Resolved by the bot", percent(total.resolution_rate), `${total.resolved} (${total.resolved_confirmed} confirmed)`, "resolved"),
    card("Handed off", percent(total.hand_off_rate), String(total.handed_off), "handed_off"),
    card("Abandoned", percent(total.abandonment_rate), String(total.abandoned), "abandoned"),
    card("Satisfaction", percent(total.satisfaction), `${total.thumbs_up} of ${total.rated} rated thumbs up`, "satisfaction"),
    card("First reply", duration(total.median_first_reply_seconds), "median", "first_reply"),
    card("Resolution", duration(total.median_resolution_seconds), "median, by the bot", "resolution"),
    card("Order changes", String(total.order_changes_executed), "executed", "changes"),
    card("Cost per conversation", money(total.cost_per_conversation), "total " + money(total.cost_usd), "cost_per_conversation"),
    card("Cost per resolution", money(total.cost_per_resolution), "by the bot", "cost_per_resolution"),
  ].join("");
}

function drawTable(report) {
  document.getElementById("period-head").textContent = report.by === "week" ? "Week of" : "Day";
  const rows = report.rows.map((r) => `<tr data-period="${escapeHtml(r.period)}"><th scope="row">${escapeHtml(r.period)}</th>
    <td>${r.conversations}</td><td>${r.resolved} (${percent(r.resolution_rate)})</td>
    <td>${r.handed_off} (${percent(r.hand_off_rate)})</td><td>${r.abandoned}</td><td>${r.ongoing}</td>
    <td>${r.rated ? percent(r.satisfaction) + " of " + r.rated : "–"}</td>
    <td>${duration(r.median_first_reply_seconds)}</td><td>${duration(r.median_resolution_seconds)}</td>
    <td>${r.order_changes_executed}</td><td>${money(r.cost_per_conversation)}</td></tr>`);
  document.querySelector("#periods tbody").innerHTML = rows.length ? rows.join("")
    : '<tr><td colspan="11" class="muted">No conversations in this period.</td></tr>';
}

function chart(id, config) {
  if (charts[id]) charts[id].destroy();
  charts[id] = new Chart(document.getElementById(id), {
    ...config,
    options: {responsive: true, maintainAspectRatio: false, animation: false, ...config.options},
  });
}

function drawCharts(report) {
  const labels = report.rows.map((r) => r.period);
  const outcome = (name, label) => ({label, data: report.rows.map((r) => r[name]), backgroundColor: COLORS[name], stack: "outcomes"});
  chart("outcomes-chart", {
    type: "bar",
    data: {labels, datasets: [outcome("resolved", "Resolved by the bot"), outcome("handed_off", "Handed off"),
                              outcome("abandoned", "Abandoned"), outcome("ongoing", "Ongoing")]},
    options: {scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true, ticks: {precision: 0}}}},
  });
  const rate = (name, label, color) => ({label, data: report.rows.map((r) => r[name] === null ? null : Math.round(r[name] * 100)),
                                         borderColor: color, backgroundColor: color, spanGaps: true, tension: 0.2});
  chart("rates-chart", {
    type: "line",
    data: {labels, datasets: [rate("resolution_rate", "Resolved by the bot (%)", COLORS.resolved),
                              rate("satisfaction", "Satisfaction (% thumbs up)", COLORS.satisfaction)]},
    options: {scales: {y: {min: 0, max: 100, ticks: {callback: (v) => v + "%"}}}},
  });
  const reasons = Object.keys(REASON_LABELS);
  chart("reasons-chart", {
    type: "bar",
    data: {labels: reasons.map((r) => REASON_LABELS[r]),
           datasets: [{label: "Hand-offs", data: reasons.map((r) => report.total.hand_offs_by_reason[r] || 0),
                       backgroundColor: COLORS.handed_off}]},
    options: {indexAxis: "y", plugins: {legend: {display: false}}, scales: {x: {beginAtZero: true, ticks: {precision: 0}}}},
  });
}

async function load() {
  showError("report-error", "");
  const report = await fetchReport();
  document.getElementById("window").textContent =
    `Resolved after ${report.resolution_window_hours} h without the customer coming back · as of ${new Date(report.generated_at).toLocaleString()}`;
  drawCards(report.total);
  drawTable(report);
  drawCharts(report);
  document.getElementById("report").dataset.loaded = "true";
}

async function open() {
  try {
    await load();
    document.getElementById("login").hidden = true;
    document.getElementById("report").hidden = false;
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      sessionStorage.removeItem(STAFF_TOKEN);
      key = null;
      document.getElementById("login").hidden = false;
      showError("login-error", error.message);
    } else {
      document.getElementById("report").hidden = false;
      showError("report-error", error.message);
    }
  }
}

staffSignIn({keyLabel: "Open the report", onToken: (signedIn) => { key = signedIn; return open(); }});
document.getElementById("filters").addEventListener("submit", (e) => {
  e.preventDefault();
  load().catch((error) => showError("report-error", error.message));
});
if (key) open();
else { document.getElementById("login").hidden = false; document.getElementById("username").focus(); }
