// The flows of a namespace, `/ui/ns/{ns}/flows`: path, states, updated, created (paged in the
// page: the API lists them all at once), and "new flow", which asks a path and opens the flow
// page with a template in the editor.
import { h, replace } from "../dom.js";
import { api, errorBox } from "../api.js";
import { link, navigate } from "../router.js";
import { pagedTable, PAGE_SIZE } from "../table.js";
import { when, ago } from "../format.js";
import { canChange, flowApiPath, flowPage } from "./flow.js";

/** The server's rule for a flow path (`deployment::check_path`). */
const SEGMENT = /^[a-z0-9][a-z0-9_.-]*$/;

/** Why `path` is not a flow path, or null when it is one. */
function pathProblem(path) {
  if (!path) return "give the flow a path, e.g. orders/process";
  if (path.length > 255) return "a flow path has at most 255 characters";
  if (!path.split("/").every((seg) => SEGMENT.test(seg) && seg.length <= 63)) {
    return "use segments of a-z, 0-9, '-', '_' and '.' (each starting with a letter or digit) separated by '/'";
  }
  return null;
}

/** The number of states of one flow, filled in when its answer comes. */
function statesCell(ns, path) {
  const cell = h("span", { class: "states muted" }, "…");
  api("GET", flowApiPath(ns, path), { query: { graph: "true" } })
    .then((flow) => {
      const n = flow.graph ? flow.graph.states.length : (flow.source?.match(/^\s*-\s+id:/gm) ?? []).length;
      cell.textContent = String(n);
      cell.classList.remove("muted");
    })
    .catch((e) => {
      cell.textContent = "?";
      cell.title = e.message ?? String(e);
    });
  return cell;
}

export default async function render(main, params) {
  const { ns } = params;
  const flows = await api("GET", `/namespaces/${encodeURIComponent(ns)}/flows`);
  flows.sort((a, b) => a.path.localeCompare(b.path));

  const table = pagedTable({
    columns: [
      { title: "path", cell: (f) => link(flowPage(ns, f.path), f.path) },
      { title: "states", cell: (f) => statesCell(ns, f.path) },
      { title: "updated", cell: (f) => h("span", { title: when(f.updated) }, ago(f.updated)) },
      { title: "created", cell: (f) => h("span", { title: when(f.created) }, when(f.created)) },
    ],
    key: (f) => f.path,
    // The API answers every flow at once: pages are cut here, `before` being the last path.
    load: async (before) => {
      const from = before === null || before === undefined ? 0 : flows.findIndex((f) => f.path === before) + 1;
      const rows = flows.slice(from, from + PAGE_SIZE);
      const next = from + PAGE_SIZE < flows.length ? rows[rows.length - 1].path : null;
      return { rows, next };
    },
    empty: "No flows yet: create one with \"New flow\", or `faasbox flow deploy`.",
  });

  const problem = h("div", { class: "form-problem" });
  const pathInput = h("input", { name: "path", placeholder: "orders/process", autocomplete: "off", "aria-label": "flow path" });
  const form = h(
    "form",
    {
      id: "new-flow",
      class: "inline",
      onsubmit: (e) => {
        e.preventDefault();
        const path = pathInput.value.trim().replace(/^\/+/, "");
        const why = pathProblem(path);
        if (why) {
          replace(problem, errorBox(new Error(`flow path '${path}' is invalid: ${why}`)));
          return;
        }
        const exists = flows.some((f) => f.path === path);
        navigate(flowPage(ns, path) + (exists ? "" : "?new=1"));
      },
    },
    h("label", {}, "Path of a new flow", pathInput),
    h("button", { type: "submit", "data-action": "new-flow" }, "New flow"),
  );

  replace(
    main,
    h("p", { class: "crumbs" }, link(`/ui/ns/${encodeURIComponent(ns)}`, ns), " / flows"),
    h("header", { class: "page-head" }, h("h1", {}, "Flows")),
    canChange() ? h("section", { id: "new", class: "card" }, form, problem) : null,
    h("section", { id: "flows" }, table),
  );
  await table.ready;
}
