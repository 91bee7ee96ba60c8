// pages/function.js: one function at /ui/ns/{ns}/functions/{fn}: its spec, revisions (with
// rollback, confirmed in the page), running instances, recent runs, live logs (SSE, stopped
// when the page is left), and a playground that runs it blocking or async and shows the
// output, the run's logs and its phases. A failed run is a result shown in the playground,
// never a failure of the page.

import { h, replace, confirmButton } from "../dom.js";
import { api, apiResponse, errorBox, ApiError } from "../api.js";
import { followSse } from "../stream.js";
import { link, navigate } from "../router.js";
import { when, ago, duration, json } from "../format.js";
import { logView } from "../logs.js";

/** How often the instances table (and the stored log lines) are read again while the page is open. */
const REFRESH_MS = 5000;
/** Log line keys remembered to show each line once. */
const MAX_SEEN = 5000;
/** How often an async run (and its logs) is polled until it ends. */
const POLL_MS = 500;
/** Recent runs shown (the runs page has them all). */
const RECENT_RUNS = 10;
/** Stored log lines shown before the live ones. */
const RECENT_LINES = 100;

const ENDED = (status) => !["queued", "running"].includes(status);

function enc(part) {
  return encodeURIComponent(part);
}

/** `sha256:0123456789ab…` with the whole digest as its title. */
function shortDigest(digest) {
  if (!digest) return h("span", { class: "muted" }, "none yet");
  const short = digest.length > 19 ? digest.slice(0, 19) + "…" : digest;
  return h("code", { class: "digest", title: digest }, short);
}

/** A definition list from `[term, value]` pairs (empty values skipped). */
function facts(pairs) {
  const items = [];
  for (const [term, value] of pairs) {
    if (value === null || value === undefined || value === "") continue;
    items.push(h("dt", {}, term), h("dd", {}, value));
  }
  return h("dl", { class: "facts" }, items);
}

function text(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** The status of a run as a badge (`data-status` for styling and tests). */
function statusBadge(status) {
  return h("span", { class: "status " + status, "data-status": status }, status);
}

function runDuration(run) {
  if (run.phases) return duration(run.phases.wait_ms + run.phases.init_ms + run.phases.run_ms);
  if (run.started && run.ended) return duration(Date.parse(run.ended) - Date.parse(run.started));
  return "";
}

/** Sleeps `ms`, or less when `signal` aborts. */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (signal) signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/**
 * The page of a function from code that is not in service: its build's status, reason and
 * log (followed while it builds; the page turns into the function's once it is READY).
 */
async function buildOnly(main, ns, fn, base, code, leaving) {
  const state = h("p", { class: "build-state", "data-status": code.status }, `Build ${code.status}`, code.reason ? `: ${code.reason}` : "");
  const log = logView({ id: "build-log", empty: "No build line." });
  replace(
    main,
    h("header", { class: "page-head" },
      h("p", { class: "crumbs" }, link(`/ui/ns/${enc(ns)}`, ns), " / ", link(`/ui/ns/${enc(ns)}/functions`, "functions"), " / "),
      h("h1", {}, fn),
      h("p", { class: "page-actions" }, link(`/ui/ns/${enc(ns)}/deploy?tab=code&name=${enc(fn)}`, "Deploy again"))),
    h("section", { id: "spec", class: "card" },
      h("h2", {}, "Function from code, not in service"),
      facts([["Base image", code.image], ["Handler", h("code", {}, code.handler)], ["Language", text(code.language)], ["Status", code.status]]),
      state,
      h("h3", {}, "Build log"),
      log.element),
  );
  let after = 0;
  const poll = async () => {
    for (;;) {
      const answer = await api("GET", `${base}/code/logs`, { query: { after }, signal: leaving.signal });
      for (const line of answer.lines || []) log.append(line);
      after = answer.next;
      state.dataset.status = answer.status;
      state.textContent = `Build ${answer.status}${answer.reason ? `: ${answer.reason}` : ""}`;
      if (answer.done) {
        if (answer.status === "READY" && !leaving.signal.aborted) navigate(location.pathname, { replace: true });
        return;
      }
      await sleep(POLL_MS, leaving.signal);
      if (leaving.signal.aborted) return;
    }
  };
  poll().catch((error) => {
    if (!leaving.signal.aborted) main.appendChild(errorBox(error));
  });
  return () => leaving.abort();
}

export default async function render(main, params) {
  const { ns, fn } = params;
  const base = `/namespaces/${enc(ns)}/functions/${enc(fn)}`;
  const runPage = (id) => `/ui/ns/${enc(ns)}/runs/${enc(id)}`;
  const leaving = new AbortController();
  const timers = [];

  // The first data: the function itself (a missing function fails the page, with the API's
  // error), or a function from code whose build has not made it a function (yet).
  let first;
  try {
    first = await api("GET", base);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    let code;
    try {
      code = await api("GET", `${base}/code`);
    } catch {
      throw error;
    }
    return buildOnly(main, ns, fn, base, code, leaving);
  }

  const title = h("h1", {}, fn);
  const header = h(
    "header",
    { class: "page-head" },
    h("p", { class: "crumbs" }, link(`/ui/ns/${enc(ns)}`, ns), " / ", link(`/ui/ns/${enc(ns)}/functions`, "functions"), " / "),
    title,
    h("p", { class: "page-actions" },
      link(`/ui/ns/${enc(ns)}/deploy?name=${enc(fn)}${first.contract === "code" ? "&tab=code" : ""}`, "Deploy a new revision"),
      " · ",
      link(`/ui/ns/${enc(ns)}/runs?function=${enc(fn)}`, "All runs")),
  );

  // --- spec -------------------------------------------------------------------------------
  const specBody = h("div", {});
  const specSection = h("section", { id: "spec", class: "card" }, h("h2", {}, "Spec"), specBody);

  async function showSpec(view) {
    const spec = view.spec || {};
    const scale = spec.scale || {};
    const pool = view.instances;
    const envs = Object.entries(spec.envs || {});
    let code = null;
    if (view.contract === "code") {
      try {
        code = await api("GET", `${base}/code`, { signal: leaving.signal });
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) code = { error };
      }
    }
    replace(
      specBody,
      facts([
        ["Contract", h("span", { "data-field": "contract" }, text(view.contract))],
        ["Image", h("code", { "data-field": "image" }, text(spec.image))],
        ["Digest", h("span", { "data-field": "digest" }, shortDigest(view.digest))],
        ["Image state", view.image ? h("span", { "data-field": "image-state" }, text(view.image.status),
          view.image.last_pull_error ? h("span", { class: "muted" }, " (last pull: ", view.image.last_pull_error, ")") : null) : null],
        ["Revision", h("span", { "data-field": "revision" }, view.revision === null || view.revision === undefined ? "none" : String(view.revision))],
        ["Language", spec.language ? text(spec.language) : null],
        ["Handler", spec.handler ? h("code", {}, spec.handler) : null],
        ["Build", code && !code.error ? h("span", {}, code.status, code.reason ? ` — ${code.reason}` : "") : null],
        ["Size", text(spec.size)],
        ["Disk", text(spec.disk)],
        ["Timeout", text(spec.timeout)],
        ["Runtime", text(spec.runtime)],
        ["Scale", `min ${text(scale.min)}, max ${text(scale.max)}, ${text(scale.concurrency)} call(s) per instance, idle after ${text(scale.idle_timeout)}`],
        ["Network", spec.network === false ? "off" : "on"],
        ["Command", spec.cmd && spec.cmd.length ? h("code", {}, spec.cmd.join(" ")) : null],
        ["Environment", envs.length ? h("ul", { class: "plain" }, envs.map(([k, v]) => h("li", {}, h("code", {}, `${k}=${v}`)))) : null],
        ["Secrets", spec.secrets && spec.secrets.length ? spec.secrets.join(", ") : null],
        ["Services", spec.services && spec.services.length ? spec.services.join(", ") : null],
        ["Input template", spec.input !== undefined && spec.input !== null ? h("pre", { class: "block json" }, json(spec.input)) : null],
        ["Schema", spec.schema ? h("pre", { class: "block json" }, json(spec.schema)) : null],
        ["Instances now", pool ? `${pool.instances} running, ${pool.starting} starting, ${pool.busy_calls} call(s) in progress, ${pool.waiting} waiting` : "none"],
        ["Created", h("span", { title: view.created }, when(view.created))],
        ["Updated", h("span", { title: view.updated }, when(view.updated), " (", ago(view.updated), ")")],
      ]),
      code && code.error ? errorBox(code.error) : null,
      view.warnings && view.warnings.length ? h("ul", { class: "warnings" }, view.warnings.map((w) => h("li", {}, w))) : null,
    );
  }

  async function reloadSpec() {
    try {
      await showSpec(await api("GET", base, { signal: leaving.signal }));
    } catch (error) {
      if (!leaving.signal.aborted) replace(specBody, errorBox(error));
    }
  }

  // --- revisions --------------------------------------------------------------------------
  const revisionsBody = h("div", {});
  const revisionsNote = h("div", { class: "note", "aria-live": "polite" });
  const revisionsSection = h("section", { id: "revisions", class: "card" }, h("h2", {}, "Revisions"), revisionsNote, revisionsBody);

  function rollbackCell(revision, current) {
    if (current) return h("span", { class: "muted" }, "current");
    return confirmButton({
      action: "rollback",
      text: "Roll back",
      confirmText: `Yes, roll back to ${revision}`,
      act: () => rollback(revision),
    });
  }

  async function rollback(revision) {
    replace(revisionsNote, h("p", { class: "muted" }, `Rolling back to revision ${revision}…`));
    try {
      const view = await api("POST", `${base}/rollback`, { body: { revision }, signal: leaving.signal });
      const changes = view.changes && view.changes.length ? `; changed: ${view.changes.join(", ")}` : "";
      replace(revisionsNote, h("p", { class: "notice", "data-result": "rollback" },
        `Revision ${view.revision} is current (it was ${view.previous_revision})${changes}.`));
      await Promise.all([showSpec(view), loadRevisions(), loadInstances()]);
    } catch (error) {
      if (leaving.signal.aborted) return;
      replace(revisionsNote, errorBox(error));
      await loadRevisions();
    }
  }

  async function loadRevisions() {
    try {
      const revisions = await api("GET", `${base}/revisions`, { signal: leaving.signal });
      const rows = [...revisions].reverse().map((r) => {
        const spec = r.spec || {};
        return h(
          "tr",
          { "data-key": String(r.revision), class: r.current ? "current" : null },
          h("td", {}, String(r.revision)),
          h("td", { class: "image-cell" }, h("code", {}, text(spec.image)), h("br", {}), shortDigest(r.digest)),
          h("td", { title: when(r.created), class: "nowrap" }, ago(r.created)),
          h("td", {}, r.created_by),
          h("td", {}, rollbackCell(r.revision, r.current)),
        );
      });
      replace(
        revisionsBody,
        rows.length
          ? h("div", { class: "scroll-x" }, h("table", { class: "list", id: "revision-list" },
            h("thead", {}, h("tr", {}, ["Revision", "Image and digest", "Created", "By", ""].map((t) => h("th", {}, t)))),
            h("tbody", {}, rows)))
          : h("p", { class: "muted" }, "No revision kept (a function from code gets its first when its build is ready)."),
      );
    } catch (error) {
      if (!leaving.signal.aborted) replace(revisionsBody, errorBox(error));
    }
  }

  // --- instances --------------------------------------------------------------------------
  const instancesBody = h("div", {});
  const instancesSection = h("section", { id: "instances", class: "card" }, h("h2", {}, "Running instances"), instancesBody);

  async function loadInstances() {
    try {
      const instances = await api("GET", `${base}/instances`, { signal: leaving.signal });
      const busy = instances.filter((i) => i.state === "busy").length;
      replace(
        instancesBody,
        h("p", { class: "summary", "data-busy": String(busy), "data-idle": String(instances.length - busy) },
          `${instances.length} running: ${busy} busy, ${instances.length - busy} idle.`),
        instances.length
          ? h("div", { class: "scroll-x" }, h("table", { class: "list" },
            h("thead", {}, h("tr", {}, ["Instance", "State", "Revision", "Started", "Calls served"].map((t) => h("th", {}, t)))),
            h("tbody", {}, instances.map((i) => h(
              "tr",
              { "data-key": i.id, "data-state": i.state },
              h("td", {}, h("code", {}, i.id)),
              h("td", {}, h("span", { class: "status " + i.state }, i.state)),
              h("td", {}, text(i.revision)),
              h("td", { title: i.started }, ago(i.started)),
              h("td", {}, String(i.calls)),
            )))))
          : null,
      );
    } catch (error) {
      if (!leaving.signal.aborted) replace(instancesBody, errorBox(error));
    }
  }

  // --- recent runs ------------------------------------------------------------------------
  const runsBody = h("div", {});
  const runsSection = h("section", { id: "runs", class: "card" }, h("h2", {}, "Recent runs"), runsBody);

  async function loadRuns() {
    try {
      const runs = await api("GET", `/namespaces/${enc(ns)}/runs`, { query: { function: fn, limit: RECENT_RUNS }, signal: leaving.signal });
      replace(
        runsBody,
        runs.length
          ? h("div", { class: "scroll-x" }, h("table", { class: "list" },
            h("thead", {}, h("tr", {}, ["Run", "Status", "Mode", "Accepted", "Took", "Cold"].map((t) => h("th", {}, t)))),
            h("tbody", {}, runs.map((r) => h(
              "tr",
              { "data-key": r.id },
              h("td", {}, link(runPage(r.id), r.id.length > 12 ? r.id.slice(0, 12) + "…" : r.id, { title: r.id })),
              h("td", { title: r.error ? `${r.error.type}: ${r.error.code}: ${r.error.message}` : null }, statusBadge(r.status), r.error ? h("span", { class: "muted" }, ` ${r.error.code}`) : null),
              h("td", {}, r.mode),
              h("td", { title: when(r.accepted), class: "nowrap" }, ago(r.accepted)),
              h("td", { class: "nowrap" }, runDuration(r)),
              h("td", {}, r.cold_start === true ? "yes" : r.cold_start === false ? "no" : ""),
            )))))
          : h("p", { class: "muted" }, "No run yet: try the playground."),
        h("p", {}, link(`/ui/ns/${enc(ns)}/runs?function=${enc(fn)}`, "All runs of this function")),
      );
    } catch (error) {
      if (!leaving.signal.aborted) replace(runsBody, errorBox(error));
    }
  }

  // --- live logs --------------------------------------------------------------------------
  const logs = logView({
    empty: "No lines yet: lines appear here as calls print them.",
    runLink: (id) => link(runPage(id), id.length > 12 ? id.slice(0, 12) + "…" : id, { title: id }),
  });
  const followState = h("span", { class: "follow-state", "data-state": "starting" }, "connecting…");
  const logsProblem = h("div", {});
  const clearButton = h("button", { type: "button", "data-action": "clear-logs" }, "Clear");
  clearButton.addEventListener("click", () => logs.clear());
  const reconnectButton = h("button", { type: "button", "data-action": "follow", hidden: true }, "Follow again");
  const logsSection = h(
    "section",
    { id: "logs", class: "card" },
    h("h2", {}, "Live logs"),
    h("p", { class: "toolbar" }, followState, " ", clearButton, " ", reconnectButton),
    logsProblem,
    logs.element,
  );

  function setFollow(state, label) {
    followState.dataset.state = state;
    followState.textContent = label;
  }

  // The stored lines are read again now and then from a cursor, and the ones the stream did
  // not bring (printed before it was open, missed while lagging) are added: each line shows
  // once, whichever way it came first.
  const seen = new Set();
  let cursor = null;
  function appendOnce(line) {
    const key = `${line.run || line.invocation}|${line.ts_ms}|${line.stream}|${line.line}`;
    if (seen.has(key)) return;
    seen.add(key);
    if (seen.size > 2 * MAX_SEEN) {
      let drop = seen.size - MAX_SEEN;
      for (const old of seen) {
        if (drop-- <= 0) break;
        seen.delete(old);
      }
    }
    logs.append(line);
  }

  async function loadStoredLines() {
    try {
      const stored = await api("GET", `${base}/logs`, { query: { limit: RECENT_LINES }, signal: leaving.signal });
      for (const line of stored.logs || []) appendOnce(line);
      cursor = stored.next;
    } catch (error) {
      if (!leaving.signal.aborted) replace(logsProblem, errorBox(error));
    }
  }

  let catchingUp = false;
  async function catchUp() {
    if (cursor === null || catchingUp) return;
    catchingUp = true;
    try {
      const stored = await api("GET", `${base}/logs`, { query: { after: cursor, limit: 1000 }, signal: leaving.signal });
      for (const line of stored.logs || []) appendOnce(line);
      cursor = stored.next;
    } catch (error) {
      if (!leaving.signal.aborted) replace(logsProblem, errorBox(error));
    } finally {
      catchingUp = false;
    }
  }

  function follow() {
    reconnectButton.hidden = true;
    replace(logsProblem);
    setFollow("following", "following: new lines appear as calls print them");
    followSse(`${base}/logs?follow=true`, ({ event, data }) => {
      if (event === "line") {
        let line;
        try {
          line = JSON.parse(data);
        } catch {
          logs.append(String(data));
          return;
        }
        appendOnce(line);
      } else if (event === "lagged") {
        let missed = "some";
        try { missed = String(JSON.parse(data).missed); } catch { /* keep "some" */ }
        logs.append({ line: `(${missed} line(s) missed: this view fell behind)`, stream: "notice" });
      }
    }, leaving.signal).then(
      () => {
        if (leaving.signal.aborted) return;
        setFollow("ended", "the stream ended");
        reconnectButton.hidden = false;
      },
      (error) => {
        if (leaving.signal.aborted) return;
        setFollow("failed", "not following");
        replace(logsProblem, errorBox(error));
        reconnectButton.hidden = false;
      },
    );
  }
  reconnectButton.addEventListener("click", follow);

  // --- playground -------------------------------------------------------------------------
  const input = h("textarea", { name: "input", rows: "8", spellcheck: "false", class: "code", "aria-label": "input (JSON)" }, "{}");
  const inputProblem = h("div", { class: "input-problem", "aria-live": "polite" });
  const runButton = h("button", { type: "button", "data-action": "run", class: "primary" }, "Run");
  const runAsyncButton = h("button", { type: "button", "data-action": "run-async" }, "Run async");
  const result = h("div", { class: "run-result" });
  const playgroundSection = h(
    "section",
    { id: "playground", class: "card" },
    h("h2", {}, "Playground"),
    h("label", { class: "field" }, h("span", {}, "Input (JSON) — Ctrl+Enter runs"), input),
    inputProblem,
    h("p", { class: "toolbar" }, runButton, " ", runAsyncButton),
    result,
  );

  let attempt = 0;

  function readInput() {
    const raw = input.value.trim() === "" ? "{}" : input.value;
    try {
      JSON.parse(raw);
      input.classList.remove("invalid");
      replace(inputProblem);
      return raw;
    } catch (error) {
      input.classList.add("invalid");
      replace(inputProblem, h("div", { class: "error", "data-code": "faasbox.ui.input_json", role: "alert" },
        h("span", { class: "error-message" }, `The input is not JSON (${error.message}): fix it, then run again. Nothing was sent.`)));
      return null;
    }
  }

  input.addEventListener("input", () => {
    if (input.classList.contains("invalid")) readInput();
  });

  /** The result area's parts, made fresh for each run. */
  function resultParts() {
    const parts = {
      status: h("p", { class: "run-status", id: "run-status" }, "starting…"),
      problem: h("div", { class: "run-problem" }),
      output: h("pre", { id: "output", class: "block json" }),
      phases: h("table", { id: "phases", class: "phases" }),
      logs: h("pre", { id: "run-logs", class: "log-lines" }),
      link: h("p", { class: "run-link" }),
    };
    replace(
      result,
      parts.status,
      parts.link,
      parts.problem,
      h("h3", {}, "Output"),
      parts.output,
      h("h3", {}, "Phases"),
      parts.phases,
      h("h3", {}, "Logs of this run"),
      parts.logs,
    );
    return parts;
  }

  function showRunId(parts, id) {
    const a = link(runPage(id), id, { id: "run-link" });
    replace(parts.link, "Run ", a);
  }

  function showOutput(parts, bodyText) {
    let shown = bodyText;
    try {
      shown = json(JSON.parse(bodyText));
    } catch {
      // not JSON: as it came
    }
    parts.output.textContent = shown;
  }

  function showPhases(parts, record) {
    const p = record.phases;
    const rows = [];
    if (p) {
      rows.push(["wait for an instance", duration(p.wait_ms)], ["start an instance", duration(p.init_ms)], ["run", duration(p.run_ms)],
        ["total", duration(p.wait_ms + p.init_ms + p.run_ms)]);
    }
    rows.push(["cold start", record.cold_start === true ? "yes" : record.cold_start === false ? "no" : "unknown"]);
    if (record.revision !== null && record.revision !== undefined) rows.push(["revision", String(record.revision)]);
    if (record.attempts > 1) rows.push(["attempts", String(record.attempts)]);
    replace(parts.phases, h("tbody", {}, rows.map(([k, v]) => h("tr", { "data-phase": k }, h("th", {}, k), h("td", {}, v)))));
  }

  /** The run's error (class, code, message) as the playground shows it (the style sheet
   *  shows `data-code` above the text, as for an API error). */
  function runErrorBox(error) {
    return h(
      "div",
      { class: "error run-failure", "data-code": error.code || "", "data-class": error.type || "", role: "alert" },
      h("span", { class: "error-class" }, error.type || "Error"),
      ": ",
      h("span", { class: "error-message" }, error.message || ""),
      error.stacktrace && error.stacktrace.length ? h("pre", { class: "stacktrace" }, error.stacktrace.join("\n")) : null,
    );
  }

  /** Reads the run's logs (polling `after=` until `done` or `untilDone` is false). */
  async function runLogs(parts, id, mine, untilDone) {
    let after = 0;
    for (let tries = 0; tries < 600; tries += 1) {
      if (mine !== attempt || leaving.signal.aborted) return;
      const answer = await api("GET", `/namespaces/${enc(ns)}/runs/${enc(id)}/logs`, { query: { after }, signal: leaving.signal });
      for (const line of answer.logs || []) parts.logs.appendChild(h("div", { class: "log-line log-" + line.stream }, line.line));
      after = answer.next;
      if (answer.done || !untilDone) break;
      await sleep(POLL_MS, leaving.signal);
    }
    if (!parts.logs.firstChild) parts.logs.appendChild(h("div", { class: "log-empty muted" }, "(no line)"));
  }

  /** Polls the run until it ended (its logs as they come); then shows the whole result. */
  async function followRun(parts, id, mine) {
    let record = null;
    let after = 0;
    for (;;) {
      if (mine !== attempt || leaving.signal.aborted) return null;
      record = await api("GET", `/namespaces/${enc(ns)}/runs/${enc(id)}`, { signal: leaving.signal });
      parts.status.textContent = `Run ${record.status}…`;
      parts.status.dataset.status = record.status;
      const answer = await api("GET", `/namespaces/${enc(ns)}/runs/${enc(id)}/logs`, { query: { after }, signal: leaving.signal });
      for (const line of answer.logs || []) parts.logs.appendChild(h("div", { class: "log-line log-" + line.stream }, line.line));
      after = answer.next;
      if (ENDED(record.status) && answer.done) return record;
      await sleep(POLL_MS, leaving.signal);
    }
  }

  function showEnded(parts, record, tookMs) {
    parts.status.dataset.status = record.status;
    replace(parts.status, statusBadge(record.status), ` in ${duration(tookMs)} (as this page saw it)`);
    if (record.error) replace(parts.problem, runErrorBox(record.error));
    if (record.output !== null && record.output !== undefined) parts.output.textContent = json(record.output);
    else if (!parts.output.textContent) parts.output.textContent = "(no output)";
    showPhases(parts, record);
  }

  /** The id of this function's newest run (`null` when it has none). */
  async function newestRun() {
    const runs = await api("GET", `/namespaces/${enc(ns)}/runs`, { query: { function: fn, limit: 1 }, signal: leaving.signal });
    return runs.length ? runs[0].id : null;
  }

  async function run(asynchronous) {
    const raw = readInput();
    if (raw === null) return;
    const mine = ++attempt;
    runButton.disabled = true;
    runAsyncButton.disabled = true;
    const parts = resultParts();
    // A failed blocking call answers an error (api.js gives no header of it): its run is then
    // the newest one, if it is not the one that was newest before the call.
    let before = null;
    if (!asynchronous) {
      try {
        before = await newestRun();
      } catch {
        before = undefined;
      }
    }
    const started = performance.now();
    let took = null;
    let answered = false;
    try {
      const response = await apiResponse("POST", `${base}/invoke`, {
        body: raw,
        query: asynchronous ? { async: "true" } : undefined,
        headers: { "Content-Type": "application/json" },
        signal: leaving.signal,
      });
      const bodyText = await response.text();
      answered = true;
      took = performance.now() - started;
      let id = response.headers.get("Faasbox-Invocation-Id");
      if (response.status === 202) {
        // Accepted (asked for, or a blocking call past the server's bound): follow it.
        try { id = id || JSON.parse(bodyText).id; } catch { /* keep the header's */ }
        if (!id) throw new Error("The server accepted the run but named no run id.");
        showRunId(parts, id);
        parts.status.textContent = asynchronous ? "Accepted; waiting for it to end…" : "Still running past the server's blocking bound; waiting for it to end…";
        const record = await followRun(parts, id, mine);
        if (record) showEnded(parts, record, performance.now() - started);
      } else {
        showOutput(parts, bodyText);
        if (id) {
          showRunId(parts, id);
          const [record] = await Promise.all([
            api("GET", `/namespaces/${enc(ns)}/runs/${enc(id)}`, { signal: leaving.signal }),
            runLogs(parts, id, mine, true),
          ]);
          if (mine === attempt) showEnded(parts, record, took);
        } else {
          parts.status.dataset.status = "succeeded";
          replace(parts.status, statusBadge("succeeded"));
        }
      }
    } catch (error) {
      if (leaving.signal.aborted || mine !== attempt) return;
      const failedAfter = took === null ? performance.now() - started : took;
      if (answered) {
        // The call's answer is shown; reading its record or logs failed.
        parts.problem.appendChild(errorBox(error));
      } else if (!(error instanceof ApiError)) {
        replace(parts.problem, errorBox(error));
        parts.status.textContent = "The run could not be shown.";
      } else {
        // The call failed: the function's error (or a refusal) is the run's result.
        replace(parts.problem, errorBox(error));
        parts.status.dataset.status = "failed";
        replace(parts.status, statusBadge("failed"), ` (${error.status})`);
        parts.output.textContent = "(no output)";
        try {
          let id = error.headers && error.headers.get ? error.headers.get("Faasbox-Invocation-Id") : null;
          if (!id && before !== undefined) {
            const newest = await newestRun();
            id = newest !== before ? newest : null;
          }
          if (id && mine === attempt) {
            showRunId(parts, id);
            const [record] = await Promise.all([
              api("GET", `/namespaces/${enc(ns)}/runs/${enc(id)}`, { signal: leaving.signal }),
              runLogs(parts, id, mine, true),
            ]);
            if (mine === attempt) {
              showEnded(parts, record, failedAfter);
              if (record.error) replace(parts.problem, runErrorBox(record.error));
            }
          } else if (mine === attempt) {
            parts.logs.appendChild(h("div", { class: "log-empty muted" }, "(no run was recorded: the request was refused before it became a call)"));
          }
        } catch (inner) {
          if (!leaving.signal.aborted && mine === attempt) parts.problem.appendChild(errorBox(inner));
        }
      }
    } finally {
      if (mine === attempt) {
        runButton.disabled = false;
        runAsyncButton.disabled = false;
      }
      if (!leaving.signal.aborted) {
        loadRuns();
        loadInstances();
        reloadSpec();
        catchUp();
      }
    }
  }

  runButton.addEventListener("click", () => run(false));
  input.addEventListener("keydown", (event) => {
    // Ctrl+Enter (⌘+Enter) runs, as the button does.
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !runButton.disabled) {
      event.preventDefault();
      run(false);
    }
  });
  runAsyncButton.addEventListener("click", () => run(true));

  // --- the page -----------------------------------------------------------------------------
  replace(
    main,
    header,
    h("div", { class: "fn-grid" },
      h("div", { class: "fn-col" }, specSection, revisionsSection, instancesSection, runsSection),
      h("div", { class: "fn-col" }, playgroundSection, logsSection)),
  );

  await Promise.all([showSpec(first), loadRevisions(), loadInstances(), loadRuns(), loadStoredLines()]);
  follow();
  // Lines printed while the stream was being opened are stored by now: add them soon.
  const soon = setTimeout(catchUp, 1500);
  timers.push(setInterval(() => {
    if (document.hidden) return;
    loadInstances();
    catchUp();
  }, REFRESH_MS));

  return () => {
    leaving.abort();
    clearTimeout(soon);
    for (const timer of timers) clearInterval(timer);
    attempt += 1;
  };
}
