// pages/run.js: one run: status, times, input, output, error (class, code, message), cold
// start, phases, the event or HTTP request that caused it, and its logs. While the run is
// queued or running the page reads it again every 2 seconds.

import { h, replace } from "../dom.js";
import { api, errorBox } from "../api.js";
import { link } from "../router.js";
import { kvTable, statusTag } from "../table.js";
import { duration, json, when } from "../format.js";

const ENDED = new Set(["succeeded", "failed", "crashed", "timeout", "cancelled"]);

function logText(logs) {
  return logs.map((l) => {
    const t = new Date(l.ts_ms);
    const time = Number.isNaN(t.getTime()) ? "" : t.toISOString().slice(11, 23);
    return h("div", { class: `log-line ${l.stream || ""}` }, `${time} ${l.stream === "stderr" ? "! " : ""}${l.line}`);
  });
}

function section(id, title, ...children) {
  return h("section", { id, class: "card" }, h("h2", {}, title), ...children);
}

function view(ns, run, logs) {
  const enc = encodeURIComponent(ns);
  const total = run.started && run.ended ? duration(new Date(run.ended) - new Date(run.started)) : null;
  const parts = [
    h("div", { class: "crumbs" }, link(`/ui/ns/${enc}/runs`, "Runs"), " / ",
      link(`/ui/ns/${enc}/runs?function=${encodeURIComponent(run.function)}`, run.function)),
    h("div", { class: "page-head" }, h("h1", {}, "Run ", h("code", { id: "run-id" }, run.id)), h("span", { id: "status" }, statusTag(run.status))),
    kvTable([
      ["Function", run.function.includes(":") ? run.function : link(`/ui/ns/${enc}/functions/${encodeURIComponent(run.function)}`, run.function)],
      ["Revision", run.revision === null ? null : String(run.revision)],
      ["Mode", run.mode],
      ["Accepted", when(run.accepted)],
      ["Started", when(run.started)],
      ["Ended", when(run.ended)],
      ["Duration", total],
      ["Cold start", run.cold_start === null || run.cold_start === undefined ? null : (run.cold_start ? "yes: it started a new instance" : "no")],
      ["Attempts", run.attempts > 1 ? String(run.attempts) : null],
      ["Callback", run.callback_url ? `${run.callback_url}${run.callback_status ? ` (${run.callback_status})` : ""}` : null],
      ["Secrets", run.secrets && run.secrets.length ? run.secrets.join(", ") : null],
      ["Services", run.services && run.services.length ? run.services.join(", ") : null],
    ]),
  ];
  if (run.error) {
    parts.push(section("error", "Error",
      h("div", { class: "run-error", "data-code": run.error.code },
        h("strong", { class: "error-class" }, run.error.type), " ", h("code", { class: "error-code" }, run.error.code), h("div", { class: "error-message" }, run.error.message)),
      run.error.stacktrace && run.error.stacktrace.length ? h("pre", { class: "block" }, run.error.stacktrace.join("\n")) : null));
  }
  if (run.phases) {
    parts.push(section("phases-section", "Phases",
      h("table", { class: "list", id: "phases" },
        h("thead", {}, h("tr", {}, h("th", {}, "Waited for an instance"), h("th", {}, "Started an instance"), h("th", {}, "Ran"))),
        h("tbody", {}, h("tr", {},
          h("td", {}, duration(run.phases.wait_ms)),
          h("td", {}, duration(run.phases.init_ms)),
          h("td", {}, duration(run.phases.run_ms)))))));
  }
  parts.push(h("div", { class: "grid2" },
    section("input", "Input", h("pre", { class: "block", id: "run-input" }, run.input === null || run.input === undefined ? "(none)" : json(run.input))),
    section("output", "Output", h("pre", { class: "block", id: "run-output" },
      run.output === null || run.output === undefined ? (ENDED.has(run.status) ? "(none)" : "(not yet)") : json(run.output)))));
  if (run.event) parts.push(section("event", "Event (without its data)", h("pre", { class: "block" }, json(run.event))));
  if (run.http_context) parts.push(section("http", "HTTP request", h("pre", { class: "block" }, json(run.http_context))));
  parts.push(section("logs", "Logs", logs.length
    ? h("pre", { class: "block log", id: "log-lines" }, logText(logs))
    : h("p", { class: "muted", id: "log-lines" }, ENDED.has(run.status) ? "The run printed nothing." : "Nothing printed yet.")));
  return parts;
}

export default async function render(main, { ns, id }) {
  const path = `/namespaces/${encodeURIComponent(ns)}/runs/${encodeURIComponent(id)}`;
  const load = async () => {
    const [run, logs] = await Promise.all([api("GET", path), api("GET", `${path}/logs`)]);
    return { run, logs: (logs && logs.logs) || [] };
  };
  let { run, logs } = await load();
  replace(main, ...view(ns, run, logs));
  let timer = null;
  let stopped = false;
  const again = async () => {
    if (stopped) return;
    try {
      ({ run, logs } = await load());
      if (stopped) return;
      replace(main, ...view(ns, run, logs));
    } catch (error) {
      if (stopped) return;
      main.appendChild(errorBox(error));
      return;
    }
    if (!ENDED.has(run.status)) timer = setTimeout(again, 2000);
  };
  if (!ENDED.has(run.status)) timer = setTimeout(again, 2000);
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
