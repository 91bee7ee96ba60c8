// pages/routes.js: a namespace's HTTP routes with their public URLs, what they call and who
// may call them (users and keys by name only: the API never answers a credential).

import { h, replace } from "../dom.js";
import { api } from "../api.js";
import { link } from "../router.js";
import { listTable, statusTag } from "../table.js";
import { ago } from "../format.js";

function target(enc, t) {
  if (!t) return "";
  if (t.function) return h("span", {}, "function ", link(`/ui/ns/${enc}/functions/${encodeURIComponent(t.function)}`, t.function));
  if (t.flow) {
    const path = t.flow.replace(/^\//, "").split("/").map(encodeURIComponent).join("/");
    return h("span", {}, "flow ", link(`/ui/ns/${enc}/flows/${path}`, t.flow));
  }
  return JSON.stringify(t);
}

function urls(route) {
  return (route.urls || []).map((u) => {
    // The server's own URL is a path (same origin); host URLs are absolute.
    const href = u.startsWith("/") ? new URL(u, location.origin).href : u;
    return h("div", {}, h("a", { href, target: "_blank", rel: "noopener noreferrer", class: "mono" }, href));
  });
}

export default async function render(main, { ns }) {
  const enc = encodeURIComponent(ns);
  const routes = await api("GET", `/namespaces/${enc}/routes`);
  replace(main,
    h("div", { class: "page-head" }, h("h1", {}, "Routes"), h("span", { class: "muted" }, `namespace ${ns}`)),
    listTable({
      columns: [
        { title: "Name", cell: (r) => r.name },
        { title: "Public URLs", cell: urls },
        { title: "Methods", cell: (r) => (r.methods && r.methods.length ? r.methods.join(", ") : "any") },
        { title: "Calls", cell: (r) => target(enc, r.target) },
        { title: "Auth", cell: (r) => {
          const a = r.auth || {};
          const who = [...(a.users || []), ...(a.keys || [])];
          return who.length ? `${a.kind} (${who.join(", ")})` : a.kind || "none";
        } },
        { title: "State", cell: (r) => statusTag(r.enabled ? "active" : "disabled") },
        { title: "Changed", cell: (r) => ago(r.modified) },
      ],
      key: (r) => r.name,
      rows: routes,
      empty: "No route: `faasbox route create` gives a function or a flow a public URL.",
    }));
}
