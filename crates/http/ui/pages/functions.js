// pages/functions.js: a namespace's functions with their status, contract, digest, revision,
// instances (busy/idle) and the calls, errors and cold starts of the last hour (?stats=1h).

import { h, replace } from "../dom.js";
import { api } from "../api.js";
import { link } from "../router.js";
import { listTable, statusTag } from "../table.js";
import { ago } from "../format.js";

function shortDigest(digest) {
  if (!digest) return h("span", { class: "muted" }, "not local yet");
  const hex = digest.replace(/^sha256:/, "");
  return h("code", { title: digest }, hex.slice(0, 12));
}

function instancesCell(fn) {
  const i = fn.instances;
  if (!i) return "—";
  const idle = typeof i.idle === "number" ? i.idle : null;
  const parts = [`${i.instances} running`];
  if (i.starting) parts.push(`${i.starting} starting`);
  parts.push(`${i.busy_calls} busy`);
  if (idle !== null) parts.push(`${idle} idle`);
  if (i.waiting) parts.push(`${i.waiting} waiting`);
  return parts.join(", ");
}

function stat(fn, key) {
  return fn.stats && typeof fn.stats[key] === "number" ? String(fn.stats[key]) : "—";
}

export default async function render(main, { ns }) {
  const enc = encodeURIComponent(ns);
  replace(main, h("div", { class: "page-head" },
    h("h1", {}, "Functions"),
    h("span", { class: "muted" }, `namespace ${ns}`),
    h("span", { class: "actions" }, link(`/ui/ns/${enc}/deploy`, "Deploy a function", { class: "button-link", "data-action": "new-function" }))));
  const functions = await api("GET", `/namespaces/${enc}/functions`, { query: { stats: "1h" } });
  main.appendChild(listTable({
    columns: [
      { title: "Name", cell: (fn) => link(`/ui/ns/${enc}/functions/${encodeURIComponent(fn.name)}`, fn.name) },
      { title: "Status", cell: (fn) => {
        const st = fn.image ? fn.image.status : "";
        return h("span", { title: fn.image && fn.image.last_pull_error ? fn.image.last_pull_error : "" }, statusTag(st === "present" ? "ready" : st));
      } },
      { title: "Contract", cell: (fn) => String(fn.contract || "") },
      { title: "Image", cell: (fn) => h("code", {}, fn.spec && fn.spec.image ? fn.spec.image : "") },
      { title: "Digest", cell: (fn) => shortDigest(fn.digest) },
      { title: "Rev.", class: "num", cell: (fn) => fn.revision === null || fn.revision === undefined ? "—" : String(fn.revision) },
      { title: "Instances", cell: instancesCell },
      { title: "Calls (1 h)", class: "num", cell: (fn) => stat(fn, "calls") },
      { title: "Errors (1 h)", class: "num", cell: (fn) => {
        const n = stat(fn, "errors");
        return n !== "—" && n !== "0" ? h("span", { class: "status failed" }, n) : n;
      } },
      { title: "Cold starts (1 h)", class: "num", cell: (fn) => stat(fn, "cold_starts") },
      { title: "Updated", cell: (fn) => h("span", { title: fn.updated }, ago(fn.updated)) },
    ],
    key: (fn) => fn.name,
    rows: functions,
    empty: "No function yet. Deploy one from an image or from code.",
  }));
}
