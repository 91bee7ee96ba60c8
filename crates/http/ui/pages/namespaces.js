// pages/namespaces.js: the namespaces the signed-in token sees, with each one's figures of
// the last hour (GET …/summary).

import { h, replace } from "../dom.js";
import { api, errorBox } from "../api.js";
import { link } from "../router.js";
import { listTable } from "../table.js";
import { when } from "../format.js";

export default async function render(main) {
  replace(main, h("div", { class: "page-head" }, h("h1", {}, "Namespaces")));
  const namespaces = await api("GET", "/namespaces");
  const summaries = new Map();
  const problems = [];
  await Promise.all(namespaces.map(async (ns) => {
    try {
      summaries.set(ns.name, await api("GET", `/namespaces/${encodeURIComponent(ns.name)}/summary`));
    } catch (error) {
      problems.push(error);
    }
  }));
  const fig = (name, pick) => {
    const s = summaries.get(name);
    if (!s) return "—";
    try { return pick(s); } catch { return "—"; }
  };
  const columns = [
    { title: "Namespace", cell: (ns) => link(`/ui/ns/${encodeURIComponent(ns.name)}`, ns.name) },
    { title: "Functions", class: "num", cell: (ns) => fig(ns.name, (s) => String(s.functions)) },
    { title: "Flows", class: "num", cell: (ns) => fig(ns.name, (s) => String(s.flows)) },
    { title: "Runs ok (1 h)", class: "num", cell: (ns) => fig(ns.name, (s) => String(s.runs.ok)) },
    { title: "Run errors (1 h)", class: "num", cell: (ns) => fig(ns.name, (s) => {
      const n = s.runs.errors;
      return n > 0 ? h("span", { class: "status failed" }, String(n)) : String(n);
    }) },
    { title: "Running now", class: "num", cell: (ns) => fig(ns.name, (s) => String(s.runs.running)) },
    { title: "Flow instances", class: "num", cell: (ns) => fig(ns.name, (s) => `${s.instances.running} running, ${s.instances.waiting} waiting`) },
    { title: "Function instances", class: "num", cell: (ns) => fig(ns.name, (s) => String(s.function_instances)) },
    { title: "Created", cell: (ns) => (ns.created ? when(ns.created).slice(0, 10) : "") },
  ];
  main.appendChild(listTable({
    columns,
    key: (ns) => ns.name,
    rows: namespaces,
    empty: "No namespace yet: `faasbox namespace create NAME` makes one.",
  }));
  if (problems.length) main.appendChild(errorBox(problems[0]));
}
