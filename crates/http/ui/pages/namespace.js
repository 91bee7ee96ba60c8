// pages/namespace.js: one namespace: its figures of the last hour (…/summary) and a link to
// each of its sections.

import { h, replace } from "../dom.js";
import { api, errorBox } from "../api.js";
import { link } from "../router.js";
import { when } from "../format.js";

const SECTIONS = [
  ["functions", "Functions", "deployed functions, their status and calls"],
  ["deploy", "Deploy", "a function from an image or from code"],
  ["runs", "Runs", "every call of a function, with input, output and logs"],
  ["flows", "Flows", "workflows and their instances"],
  ["events", "Events", "events received, send one, subscriptions"],
  ["routes", "Routes", "public HTTP URLs of functions and flows"],
  ["secrets", "Secrets", "names and times; values are never shown"],
  ["registries", "Registries", "credentials for image registries"],
  ["images", "Images", "images, image builds, base images"],
];

function figure(value, label) {
  return h("div", { class: "figure" }, h("span", { class: "value" }, String(value)), h("span", { class: "label" }, label));
}

export default async function render(main, { ns }) {
  const base = `/namespaces/${encodeURIComponent(ns)}`;
  const record = await api("GET", base);
  replace(main,
    h("div", { class: "page-head" }, h("h1", {}, `Namespace ${record.name}`),
      h("span", { class: "muted" }, `created ${when(record.created)}`)));
  let summary = null;
  try {
    summary = await api("GET", `${base}/summary`);
  } catch (error) {
    main.appendChild(errorBox(error));
  }
  if (summary) {
    main.appendChild(h("div", { class: "figures", id: "summary" },
      figure(summary.functions, "functions"),
      figure(summary.flows, "flows"),
      figure(summary.runs.ok, "runs ok, last hour"),
      figure(summary.runs.errors, "run errors, last hour"),
      figure(summary.runs.running, "runs running"),
      figure(summary.instances.running + summary.instances.waiting, "flow instances running or waiting"),
      figure(summary.function_instances, "function instances")));
  }
  main.appendChild(h("div", { class: "grid2 sections" },
    SECTIONS.map(([key, title, what]) => h("div", { class: "card" },
      h("h3", {}, link(`/ui/ns/${encodeURIComponent(ns)}/${key}`, title)),
      h("p", { class: "muted" }, what)))));
}
