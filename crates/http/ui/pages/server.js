// pages/server.js (admins): the server's version and uptime (GET /api/v1/server) and a few
// figures summed from its metrics (GET /ui/metrics, the OpenMetrics text of /metrics).

import { h, replace } from "../dom.js";
import { api, errorBox, isAdmin, metricsText } from "../api.js";
import { kvTable } from "../table.js";
import { when } from "../format.js";

/** Sums of the samples of each metric family in an OpenMetrics/Prometheus text, by name and by label. */
export function parseMetrics(text) {
  const sums = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([^\s]+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    const labels = {};
    if (m[2]) {
      for (const pair of m[2].slice(1, -1).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    }
    if (!sums.has(m[1])) sums.set(m[1], []);
    sums.get(m[1]).push({ labels, value });
  }
  return sums;
}

function total(metrics, name, filter = () => true) {
  // A series appears with its first count: no sample yet is zero.
  const samples = metrics.get(name);
  if (!samples) return 0;
  return samples.filter((s) => filter(s.labels)).reduce((a, s) => a + s.value, 0);
}

/** "4 d 3 h", "2 h 5 min", "3 min 12 s", "40 s". */
function uptime(seconds) {
  if (!Number.isFinite(seconds)) return "";
  const d = Math.floor(seconds / 86400);
  const hr = Math.floor((seconds % 86400) / 3600);
  const min = Math.floor((seconds % 3600) / 60);
  const sec = Math.floor(seconds % 60);
  if (d) return `${d} d ${hr} h`;
  if (hr) return `${hr} h ${min} min`;
  if (min) return `${min} min ${sec} s`;
  return `${sec} s`;
}

function figure(value, label) {
  return h("div", { class: "figure" }, h("span", { class: "value" }, value === null ? "—" : String(value)), h("span", { class: "label" }, label));
}

export default async function render(main) {
  if (!isAdmin()) {
    // The API refuses a namespace token here: say so rather than make a request bound to fail.
    replace(main, h("h1", {}, "Server"), h("p", { class: "notice", id: "admins-only" },
      "This page is for the server's admin token; this session is a namespace token's."));
    return;
  }
  replace(main, h("div", { class: "page-head" }, h("h1", {}, "Server")));
  const about = h("section", { class: "card", id: "about" }, h("h2", {}, "This server"));
  const figures = h("section", { class: "card", id: "figures" }, h("h2", {}, "Since it started"));
  main.append(about, figures);

  const aboutReady = (async () => {
    const s = await api("GET", "/server");
    about.appendChild(kvTable([
      ["Version", s.version],
      ["Started", when(s.started)],
      ["Uptime", uptime(Number(s.uptime_seconds))],
      ["Driver", s.driver],
      ["Namespaces", String(s.namespaces)],
      ["Functions", String(s.functions)],
      ["Flows", String(s.flows)],
      ["UI sessions", String(s.sessions)],
    ]));
  })().catch((error) => about.appendChild(errorBox(error)));

  const figuresReady = (async () => {
    const metrics = parseMetrics(await metricsText());
    if (metrics.size === 0) throw new Error("The server's /metrics answer had no figure in it.");
    figures.appendChild(h("div", { class: "figures" },
      figure(total(metrics, "faasbox_invocations_total"), "calls ended"),
      figure(total(metrics, "faasbox_invocations_total", (l) => l.outcome && l.outcome !== "ok"), "calls not ok"),
      figure(total(metrics, "faasbox_cold_starts_total"), "cold starts"),
      figure(total(metrics, "faasbox_instances"), "function instances now"),
      figure(total(metrics, "faasbox_calls_in_flight"), "calls in flight now"),
      figure(total(metrics, "faasbox_events_accepted_total"), "events accepted"),
      figure(total(metrics, "faasbox_flow_instances_started_total"), "flow instances started")));
  })().catch((error) => figures.appendChild(errorBox(error)));

  await Promise.all([aboutReady, figuresReady]);
}
