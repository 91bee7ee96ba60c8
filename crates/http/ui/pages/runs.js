// pages/runs.js: a namespace's runs, newest first, 50 a page (keyset `before=`), filtered by
// function, status and since, all three in the URL's query string (bookmarkable).

import { h, replace } from "../dom.js";
import { api } from "../api.js";
import { link, navigate } from "../router.js";
import { apiPage, pagedTable, statusTag } from "../table.js";
import { ago, duration, when } from "../format.js";

const STATUSES = ["queued", "running", "succeeded", "failed", "crashed", "timeout", "cancelled"];
const SINCE = [["", "any time"], ["15m", "last 15 min"], ["1h", "last hour"], ["24h", "last 24 h"], ["7d", "last 7 days"]];

/** `since` of the query: `15m`, `1h`, `24h`, `7d` (relative to now) or an RFC 3339 time. */
export function sinceTime(since) {
  if (!since) return null;
  const m = /^(\d+)([mhd])$/.exec(since);
  if (!m) return since;
  const unit = { m: 60e3, h: 3600e3, d: 86400e3 }[m[2]];
  return new Date(Date.now() - Number(m[1]) * unit).toISOString();
}

function runDuration(run) {
  if (!run.started || !run.ended) return "";
  return duration(new Date(run.ended) - new Date(run.started));
}

export default async function render(main, { ns }, query) {
  const enc = encodeURIComponent(ns);
  const filters = { function: query.get("function") || "", status: query.get("status") || "", since: query.get("since") || "" };
  // Function names for the filter (a short list; the runs themselves are paged).
  let names = [];
  try {
    names = (await api("GET", `/namespaces/${enc}/functions`)).map((f) => f.name);
  } catch (error) {
    console.warn("the function names:", error);
  }
  if (filters.function && !names.includes(filters.function)) names.push(filters.function);
  const sinceOptions = SINCE.some(([v]) => v === filters.since) ? SINCE : [...SINCE, [filters.since, filters.since]];

  const fnSelect = h("select", { name: "function" },
    h("option", { value: "" }, "every function"),
    names.map((n) => h("option", { value: n, selected: n === filters.function }, n)));
  const statusSelect = h("select", { name: "status" },
    h("option", { value: "" }, "any status"),
    STATUSES.map((s) => h("option", { value: s, selected: s === filters.status }, s)));
  const sinceSelect = h("select", { name: "since" },
    sinceOptions.map(([v, t]) => h("option", { value: v, selected: v === filters.since }, t)));
  const apply = (event) => {
    if (event) event.preventDefault();
    const q = new URLSearchParams();
    if (fnSelect.value) q.set("function", fnSelect.value);
    if (statusSelect.value) q.set("status", statusSelect.value);
    if (sinceSelect.value) q.set("since", sinceSelect.value);
    const s = q.toString();
    navigate(`/ui/ns/${enc}/runs${s ? "?" + s : ""}`);
  };
  for (const el of [fnSelect, statusSelect, sinceSelect]) el.addEventListener("change", apply);

  const table = pagedTable({
    columns: [
      { title: "Run", cell: (r) => link(`/ui/ns/${enc}/runs/${encodeURIComponent(r.id)}`, r.id, { class: "mono" }) },
      // A flow's own functions (`flow:PATH:ID`) have no function page.
      { title: "Function", cell: (r) => r.function.includes(":") ? r.function : link(`/ui/ns/${enc}/functions/${encodeURIComponent(r.function)}`, r.function) },
      { title: "Status", cell: (r) => statusTag(r.status) },
      { title: "Mode", cell: (r) => r.mode },
      { title: "Accepted", cell: (r) => h("span", { title: when(r.accepted) }, ago(r.accepted)) },
      { title: "Duration", class: "num", cell: runDuration },
      { title: "Cold", cell: (r) => r.cold_start ? "cold" : "" },
      { title: "Error", cell: (r) => r.error ? h("code", {}, r.error.code || r.error.type || "") : (r.error_code ? h("code", {}, r.error_code) : "") },
    ],
    key: (r) => r.id,
    load: apiPage(`/namespaces/${enc}/runs`, { function: filters.function, status: filters.status, since: sinceTime(filters.since) }),
    empty: filters.function || filters.status || filters.since ? "No run matches these filters." : "No run yet.",
  });

  replace(main,
    h("div", { class: "page-head" }, h("h1", {}, "Runs"), h("span", { class: "muted" }, `namespace ${ns}`)),
    h("form", { id: "run-filters", class: "inline filters", onsubmit: apply },
      h("label", {}, "Function", fnSelect),
      h("label", {}, "Status", statusSelect),
      h("label", {}, "Since", sinceSelect),
      filters.function || filters.status || filters.since ? link(`/ui/ns/${enc}/runs`, "clear filters") : null),
    table);
  await table.ready;
}
