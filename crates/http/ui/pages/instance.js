// A flow instance, `/ui/ns/{ns}/instances/{id}`: `#status`, the timeline of its states
// (`ol#timeline`, each state's start, end, input, output and error), the calls its actions
// made, its logs (`pre#log-lines`, polled with `…/logs?after=`), refreshed every second while
// it runs or waits, and cancel (asked in the page) while it has not ended.
import { h, svg, replace, confirmButton } from "../dom.js";
import { api, errorBox } from "../api.js";
import { link } from "../router.js";
import { statusTag } from "../table.js";
import { when, ago, duration, json } from "../format.js";
import { logView } from "../logs.js";
import { drawDiagram } from "../diagram.js";
import { canChange, flowApiPath, flowPage } from "./flow.js";

const REFRESH_MS = 1000;
const LIVE = new Set(["running", "waiting"]);
/** Calls listed under a state at most (a foreach may make thousands). */
const CALLS_SHOWN = 20;

/** A value shown folded: its one-line start as the summary, the pretty JSON inside. */
function folded(label, value, truncated = false) {
  if (truncated) return h("div", { class: "value truncated" }, `${label}: over 64 KiB, not kept`);
  if (value === null || value === undefined) return null;
  const text = json(value);
  const flat = JSON.stringify(value);
  return h(
    "details",
    { class: "value", "data-part": label },
    h("summary", {}, h("span", { class: "value-label" }, label), " ", h("code", {}, flat.length > 80 ? flat.slice(0, 79) + "…" : flat)),
    h("pre", { class: "json" }, text),
  );
}

function msBetween(a, b) {
  const ms = Date.parse(b) - Date.parse(a);
  return Number.isFinite(ms) ? ms : null;
}

/** One timeline entry, `{step, state, started, finished, input, output, error, truncated}`. */
function timelineItem(ns, entry, calls) {
  const took = entry.finished && entry.started ? msBetween(entry.started, entry.finished) : null;
  const mine = calls.filter((c) => c.state === entry.state);
  return h(
    "li",
    {
      "data-state": entry.state,
      "data-step": entry.step ?? "",
      class: entry.error ? "failed" : entry.finished === null ? "current" : "finished",
    },
    h(
      "div",
      { class: "step-head" },
      h("span", { class: "step-state" }, entry.state),
      entry.started ? h("span", { class: "step-time", title: when(entry.started) }, "started ", when(entry.started)) : null,
      entry.finished
        ? h("span", { class: "step-time", title: when(entry.finished) }, took !== null ? `took ${duration(took)}` : `finished ${when(entry.finished)}`)
        : entry.started
          ? h("span", { class: "step-time running" }, "not finished")
          : null,
    ),
    folded("input", entry.input, entry.truncated && entry.input === null),
    folded("output", entry.output, Boolean(entry.truncated && entry.output === null && entry.finished)),
    entry.error ? h("div", { class: "step-error" }, h("code", {}, entry.error.code), ": ", entry.error.message) : null,
    mine.length
      ? h(
          "ul",
          { class: "calls" },
          mine.slice(0, CALLS_SHOWN).map((c) => callItem(ns, c)),
          mine.length > CALLS_SHOWN ? h("li", { class: "muted" }, `and ${mine.length - CALLS_SHOWN} more calls (the runs page lists them all)`) : null,
        )
      : null,
  );
}

function callItem(ns, c) {
  const target =
    c.kind === "instance"
      ? link(`/ui/ns/${encodeURIComponent(ns)}/instances/${encodeURIComponent(c.id)}`, c.id)
      : link(`/ui/ns/${encodeURIComponent(ns)}/runs/${encodeURIComponent(c.id)}`, c.id);
  return h(
    "li",
    { "data-call": c.id },
    c.kind === "instance" ? "subflow " : "function ",
    h("code", {}, c.function),
    " → ",
    target,
    c.status ? [" ", statusTag(c.status)] : null,
  );
}

/** The timeline of an instance: the server's `timeline`, or (older servers) its `states`. */
function entriesOf(instance) {
  if (Array.isArray(instance.timeline)) return instance.timeline;
  return (instance.states ?? []).map((state, i) => ({ step: i + 1, state }));
}

export default async function render(main, params) {
  const { ns, id } = params;
  const path = `/namespaces/${encodeURIComponent(ns)}/instances/${encodeURIComponent(id)}`;
  let instance = await api("GET", path);

  const status = h("span", { id: "status" });
  const meta = h("dl", { class: "instance-meta" });
  const values = h("div", { class: "instance-values" });
  const timeline = h("ol", { id: "timeline", class: "timeline" });
  const logs = logView({
    empty: "No log lines yet.",
    runLink: (run) => link(`/ui/ns/${encodeURIComponent(ns)}/runs/${encodeURIComponent(run)}`, run.slice(0, 8)),
  });
  const problem = h("div", { class: "refresh-problem" });
  const diagram = svg("svg", { id: "diagram", role: "img", "aria-label": "the flow's states, those this instance went through marked" });
  const diagramSection = h(
    "section",
    { id: "diagram-section", class: "card", hidden: true },
    h("h2", {}, "Path through the flow"),
    h("p", { class: "hint" }, "As the flow is deployed now: green the states finished, blue the one running, red the one that failed."),
    h("div", { class: "diagram-scroll" }, diagram),
  );
  // The flow's graph (null when the flow is gone or the server gives no graph).
  let graph = null;
  let drawnMarks = null;
  const actions = h("div", { class: "actions" });

  // Cancel, asked in the page (the first click shows the confirm button); one element kept
  // while the instance runs, so a refresh does not close the question.
  const cancel = confirmButton({
    action: "cancel",
    text: "Cancel instance",
    confirmText: "Yes, cancel the instance",
    act: async () => {
      await api("POST", `${path}/cancel`);
      replace(problem);
      await refresh();
    },
    onError: (e) => replace(problem, errorBox(e)),
  });
  function drawActions() {
    const live = LIVE.has(instance.status) && canChange();
    if (live && cancel.parentNode !== actions) replace(actions, cancel);
    if (!live && actions.firstChild) replace(actions);
  }

  // Timeline items are kept when unchanged, so open `details` stay open across refreshes.
  const drawn = new Map();
  let drawnValues = null;
  function draw() {
    status.textContent = instance.status;
    status.className = `status ${instance.status}`;
    const ended = !LIVE.has(instance.status);
    replace(
      meta,
      h("dt", {}, "flow"),
      h("dd", {}, link(flowPage(ns, instance.flow), instance.flow)),
      h("dt", {}, "started"),
      h("dd", { title: when(instance.created) }, when(instance.created), " (", ago(instance.created), ")"),
      h("dt", {}, ended ? "ended" : "updated"),
      h("dd", { title: when(instance.updated) }, when(instance.updated)),
      ...(ended && msBetween(instance.created, instance.updated) !== null
        ? [h("dt", {}, "took"), h("dd", {}, duration(msBetween(instance.created, instance.updated)))]
        : []),
      ...(instance.parent
        ? [h("dt", {}, "parent"), h("dd", {}, link(`/ui/ns/${encodeURIComponent(ns)}/instances/${encodeURIComponent(instance.parent)}`, instance.parent))]
        : []),
    );
    const valuesSig = JSON.stringify([instance.input, instance.output, instance.metadata, instance.error]);
    if (valuesSig !== drawnValues) {
      drawnValues = valuesSig;
      replace(
        values,
        ...[
          folded("input", instance.input),
          folded("output", instance.output),
          folded("metadata", instance.metadata),
          instance.error
            ? h("div", { class: "instance-error", "data-code": instance.error.code }, h("code", {}, instance.error.code), ": ", instance.error.message)
            : null,
        ].filter(Boolean),
      );
    }
    const calls = instance.calls ?? [];
    const items = entriesOf(instance).map((entry) => {
      const key = `${entry.step}:${entry.state}`;
      const sig = JSON.stringify([entry, calls.filter((c) => c.state === entry.state)]);
      const old = drawn.get(key);
      if (old && old.sig === sig) return old.node;
      const node = timelineItem(ns, entry, calls);
      // Keep what the reader had unfolded.
      if (old) {
        for (const d of old.node.querySelectorAll("details[open]")) {
          node.querySelector(`details[data-part="${d.dataset.part}"]`)?.setAttribute("open", "");
        }
      }
      drawn.set(key, { sig, node });
      return node;
    });
    if (graph) {
      const marks = {};
      for (const entry of entriesOf(instance)) {
        marks[entry.state] = entry.error ? "failed" : entry.finished === null ? "current" : "visited";
      }
      const sig = JSON.stringify(marks);
      if (sig !== drawnMarks) {
        drawnMarks = sig;
        drawDiagram(diagram, graph, { marks });
      }
    }
    if (items.length === 0) replace(timeline, h("li", { class: "empty" }, LIVE.has(instance.status) ? "no state has finished yet" : "no state finished"));
    else if (items.some((node, i) => timeline.children[i] !== node) || timeline.children.length !== items.length) replace(timeline, ...items);
    drawActions();
  }

  // Logs: the lines after the last one shown.
  let after = 0;
  async function pollLogs() {
    const answer = await api("GET", `${path}/logs`, { query: { after: String(after) } });
    for (const line of answer.logs ?? []) {
      after = Math.max(after, line.seq);
      logs.append({ text: (line.state ? `[${line.state}] ` : "") + line.message, ts_ms: line.ts_ms, run: line.invocation });
    }
  }

  let timer = null;
  let stopped = false;
  async function refresh() {
    try {
      instance = await api("GET", path);
      await pollLogs();
      replace(problem);
    } catch (e) {
      replace(problem, errorBox(e));
    }
    if (!stopped) draw();
  }
  async function tick() {
    const wasLive = LIVE.has(instance.status);
    await refresh();
    // One more round after the end, so the last lines and states show.
    if (!stopped && (wasLive || LIVE.has(instance.status))) timer = setTimeout(tick, REFRESH_MS);
  }

  replace(
    main,
    h(
      "p",
      { class: "crumbs" },
      link(`/ui/ns/${encodeURIComponent(ns)}`, ns),
      " / ",
      link(`/ui/ns/${encodeURIComponent(ns)}/flows`, "flows"),
      " / ",
      link(flowPage(ns, instance.flow), instance.flow),
    ),
    h("header", { class: "page-head" }, h("h1", {}, "Instance ", h("code", {}, id)), status, actions),
    problem,
    h("section", { id: "summary", class: "card" }, meta, values),
    h("section", { id: "states", class: "card" }, h("h2", {}, "Timeline"), timeline),
    diagramSection,
    h("section", { id: "logs", class: "card" }, h("h2", {}, "Logs"), logs.element),
  );
  // The flow's diagram, looked up in the list first (a deleted flow is no failed request).
  try {
    const flows = await api("GET", `/namespaces/${encodeURIComponent(ns)}/flows`);
    if (flows.some((f) => f.path === instance.flow)) {
      graph = (await api("GET", flowApiPath(ns, instance.flow), { query: { graph: "true" } })).graph ?? null;
    }
  } catch (e) {
    replace(problem, errorBox(e));
  }
  diagramSection.hidden = !graph;
  await pollLogs();
  draw();
  if (LIVE.has(instance.status)) timer = setTimeout(tick, REFRESH_MS);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
