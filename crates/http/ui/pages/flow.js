// The flow page, `/ui/ns/{ns}/flows/{path}`: the flow's YAML in the editor, validated on the
// server as you type (`POST …/flows/{path}/validate`, 300 ms after the last key) with each
// problem marked at its line and the diagram redrawn from the answer's graph; deploy (`PUT`),
// run with a JSON input (→ the instance page), and the flow's instances, paged.
import { h, svg, replace, confirmButton } from "../dom.js";
import { api, apiResponse, errorBox, session } from "../api.js";
import { link, navigate } from "../router.js";
import { pagedTable, statusTag, PAGE_SIZE } from "../table.js";
import { when, ago } from "../format.js";
import { yamlEditor } from "../yaml-editor.js";
import { drawDiagram, diagramLegend } from "../diagram.js";

/** What a new flow's editor starts with. */
const TEMPLATE = `direktiv_api: workflow/v1
description: says hello
states:
- id: hello
  type: noop
  transform:
    greeting: 'jq("hello " + (.name // "world"))'
`;

const VALIDATE_DELAY_MS = 300;

/** `/namespaces/{ns}/flows/{path}` with each part escaped (the path keeps its `/`). */
export function flowApiPath(ns, path) {
  return `/namespaces/${encodeURIComponent(ns)}/flows/${path.split("/").map(encodeURIComponent).join("/")}`;
}

/** The flow page's URL. */
export function flowPage(ns, path) {
  return `/ui/ns/${encodeURIComponent(ns)}/flows/${path.split("/").map(encodeURIComponent).join("/")}`;
}

/** The problems of a refused deploy, wherever the client put the error body's `problems`. */
function problemsOf(error) {
  for (const candidate of [error?.problems, error?.details?.problems, error?.details, error?.body?.error?.problems]) {
    if (Array.isArray(candidate) && candidate.every((p) => p && typeof p.line === "number")) return candidate;
  }
  return null;
}

/**
 * Whether the signed-in token may change flows: an invoke token may read and run them only
 * (the API refuses it validate, deploy, delete and cancel).
 */
export function canChange() {
  const principal = session()?.principal;
  return !(principal?.kind === "namespace" && principal.role === "invoke");
}

export default async function render(main, params, query) {
  const { ns, path } = params;
  const writable = canChange();
  const base = flowApiPath(ns, path);
  const stops = [];

  // The flow as deployed (null: not deployed yet). A "new flow" (`?new=1`) looks in the list
  // first, so that a path not deployed yet is no failed request.
  let deployed = null;
  if (query?.has("new")) {
    const flows = await api("GET", `/namespaces/${encodeURIComponent(ns)}/flows`);
    if (flows.some((f) => f.path === path)) deployed = await api("GET", base, { query: { graph: "true" } });
  } else {
    deployed = await api("GET", base, { query: { graph: "true" } });
  }

  const state = h("span", { id: "flow-state" });
  const validity = h("span", { id: "validity", class: "validity" });
  const validateError = h("div", { class: "validate-error" });
  const deployResult = h("div", { id: "deploy-result" });
  const diagramNote = h("p", { class: "hint", id: "diagram-note" });
  const diagram = svg("svg", { id: "diagram", role: "img", "aria-label": "the flow's states and transitions" });

  const editor = yamlEditor({
    value: deployed?.source ?? TEMPLATE,
    oninput: () => {
      showState();
      if (writable) schedule();
    },
    onsave: () => {
      if (writable) deploy();
    },
  });

  function showState() {
    if (!deployed) {
      state.textContent = "not deployed yet";
    } else {
      const changed = editor.value() !== deployed.source;
      state.textContent = `deployed ${ago(deployed.updated)}` + (changed ? " · changed since (not deployed)" : "");
      state.title = "updated " + when(deployed.updated) + ", created " + when(deployed.created);
    }
  }

  // Validation: the answer for an older text than the last one sent is dropped (requests are
  // not aborted: an aborted request would be an error in the console).
  let timer = null;
  let generation = 0;
  function schedule() {
    clearTimeout(timer);
    validity.textContent = "checking…";
    validity.className = "validity checking";
    timer = setTimeout(validate, VALIDATE_DELAY_MS);
  }
  stops.push(() => {
    clearTimeout(timer);
    generation += 1;
  });

  function showVerdict(result) {
    editor.setProblems(result.problems ?? [], result.warnings ?? []);
    const n = result.problems?.length ?? 0;
    const w = result.warnings?.length ?? 0;
    if (result.valid) {
      validity.textContent = w ? `valid, ${w} warning${w === 1 ? "" : "s"}` : "valid";
      validity.className = "validity valid";
    } else {
      validity.textContent = `${n} problem${n === 1 ? "" : "s"}`;
      validity.className = "validity invalid";
    }
    if (result.graph) {
      drawDiagram(diagram, result.graph, { onselect: selectState });
      diagramNote.textContent = "";
    } else if (diagram.querySelector("g.node")) {
      diagram.classList.add("stale");
      diagramNote.textContent = "The last version that checked out; fix the problems to see this one.";
    }
  }

  async function validate() {
    const mine = ++generation;
    try {
      const result = await api("POST", `${base}/validate`, {
        body: editor.value(),
        headers: { "Content-Type": "application/yaml" },
      });
      if (mine !== generation) return;
      replace(validateError);
      showVerdict(result);
    } catch (e) {
      if (mine !== generation) return;
      validity.textContent = "not checked";
      validity.className = "validity unknown";
      replace(validateError, errorBox(e));
    }
  }

  function selectState(s) {
    if (s.line) editor.focusAt(s.line, 1);
  }

  async function deploy() {
    deployButton.disabled = true;
    replace(deployResult, "deploying…");
    try {
      const answer = await api("PUT", base, {
        body: editor.value(),
        headers: { "Content-Type": "application/yaml" },
      });
      const fresh = await api("GET", base, { query: { graph: "true" } });
      deployed = fresh;
      const w = answer?.warnings?.length ?? 0;
      replace(deployResult, h("span", { class: "ok" }, `deployed${w ? `, with ${w} warning${w === 1 ? "" : "s"}` : ""}`));
      editor.setProblems([], answer?.warnings ?? []);
      if (fresh.graph) {
        drawDiagram(diagram, fresh.graph, { onselect: selectState });
        diagramNote.textContent = "";
      }
      showState();
      runButton.disabled = false;
      remove.hidden = false;
    } catch (e) {
      replace(deployResult, errorBox(e));
      if (e?.code === "faasbox.flow.invalid") {
        const problems = problemsOf(e);
        if (problems) editor.setProblems(problems, []);
        else validate();
      }
    } finally {
      deployButton.disabled = false;
    }
  }

  const deployButton = h("button", { type: "button", "data-action": "deploy", class: "primary", onclick: () => deploy() }, "Deploy");

  // Delete (asked in the page), shown once the flow is deployed.
  const removeProblem = h("div");
  const remove = confirmButton({
    action: "delete",
    text: "Delete flow",
    confirmText: "Delete " + path,
    act: async () => {
      await api("DELETE", base);
      navigate(`/ui/ns/${encodeURIComponent(ns)}/flows`);
    },
    onError: (e) => replace(removeProblem, errorBox(e)),
  });
  remove.hidden = !deployed || !writable;
  if (!writable) {
    deployButton.hidden = true;
    editor.textarea.readOnly = true;
    validity.textContent = "read only: this token may run the flow, not change it";
  }

  // Run with an input.
  const input = h("textarea", { name: "input", rows: "4", spellcheck: "false", "aria-label": "run input (JSON)" });
  input.value = "{}";
  const runResult = h("div", { id: "run-result" });
  const runButton = h("button", { type: "button", "data-action": "run", onclick: () => run() }, "Run");
  runButton.disabled = !deployed;
  async function run() {
    const text = input.value.trim() || "{}";
    try {
      JSON.parse(text);
    } catch (e) {
      replace(runResult, errorBox(new Error(`the input is not JSON: ${e.message}`)));
      return;
    }
    runButton.disabled = true;
    replace(runResult, "starting…");
    try {
      const answer = await api("POST", `${base}/run`, { body: text, headers: { "Content-Type": "application/json" } });
      navigate(`/ui/ns/${encodeURIComponent(ns)}/instances/${encodeURIComponent(answer.id)}`);
    } catch (e) {
      replace(runResult, errorBox(e));
      runButton.disabled = false;
      remove.hidden = false;
    }
  }

  // The flow's instances, newest first.
  const instances = pagedTable({
    columns: [
      { title: "instance", cell: (r) => link(`/ui/ns/${encodeURIComponent(ns)}/instances/${encodeURIComponent(r.id)}`, r.id) },
      { title: "status", cell: (r) => statusTag(r.status) },
      { title: "started", cell: (r) => h("span", { title: when(r.created) }, ago(r.created)) },
      { title: "updated", cell: (r) => h("span", { title: when(r.updated) }, ago(r.updated)) },
      { title: "error", cell: (r) => (r.error ? `${r.error.code}: ${r.error.message}` : "") },
    ],
    key: (r) => r.id,
    load: async (before) => {
      const q = { flow: path, limit: PAGE_SIZE };
      if (before) q.before = before;
      const response = await apiResponse("GET", `/namespaces/${encodeURIComponent(ns)}/instances`, { query: q });
      const rows = (await response.json()).filter((r) => r.flow === path);
      return { rows, next: response.headers.get("Faasbox-Next") };
    },
    empty: "No instances yet: run the flow.",
  });
  // table.js makes a new `table.list` for each page: each gets the id docs/UI.md names.
  const nameTable = () => {
    const table = instances.querySelector("table.list");
    if (table && table.id !== "instances") table.id = "instances";
  };
  const observer = new MutationObserver(nameTable);
  observer.observe(instances, { childList: true, subtree: true });
  stops.push(() => observer.disconnect());

  replace(
    main,
    h("p", { class: "crumbs" }, link(`/ui/ns/${encodeURIComponent(ns)}`, ns), " / ", link(`/ui/ns/${encodeURIComponent(ns)}/flows`, "flows")),
    h("header", { class: "page-head" }, h("h1", {}, "Flow ", h("code", {}, path)), h("span", { class: "flow-meta" }, state), h("div", { class: "actions" }, remove)),
    removeProblem,
    h(
      "div",
      { class: "flow-layout" },
      h(
        "section",
        { id: "editor", class: "card flow-editor" },
        h("div", { class: "section-head" }, h("h2", {}, "Source"), validity, deployButton),
        editor.element,
        validateError,
        deployResult,
        editor.problems,
        editor.warnings,
        h("p", { class: "hint" }, "Checked on the server as you type. Ctrl+S deploys. Click a problem to go to its line."),
      ),
      h(
        "section",
        { id: "diagram-section", class: "card flow-diagram" },
        h("div", { class: "section-head" }, h("h2", {}, "Diagram")),
        diagramLegend(),
        diagramNote,
        h("div", { class: "diagram-scroll" }, diagram),
        h("p", { class: "hint" }, "Click a state to go to it in the source."),
      ),
    ),
    h(
      "section",
      { id: "run", class: "card flow-run" },
      h("h2", {}, "Run"),
      h("p", { class: "hint" }, "Runs the deployed version with this input (JSON)."),
      input,
      h("div", { class: "actions" }, runButton),
      runResult,
    ),
    h("section", { id: "instances-section", class: "card" }, h("h2", {}, "Instances"), instances),
  );

  showState();
  if (deployed?.graph) drawDiagram(diagram, deployed.graph, { onselect: selectState });
  else drawDiagram(diagram, null);
  // The first verdict (warnings of the deployed flow, or the template's graph); not awaited
  // beyond its own errors, which it shows.
  await Promise.all([writable ? validate() : null, instances.ready]);
  nameTable();
  return () => stops.forEach((stop) => stop());
}
