// pages/tokens.js (admins): the API tokens (id, name, namespace, role, created; never the
// tokens themselves), delete one (asked in the page). Creating a token is the CLI's: a token
// is never sent to a browser; the page shows the command for the values chosen.

import { confirmButton, h, replace } from "../dom.js";
import { api, errorBox, isAdmin, session } from "../api.js";
import { listTable } from "../table.js";
import { ago, when } from "../format.js";

function shellQuote(s) {
  return /^[A-Za-z0-9._\-/]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

export default async function render(main) {
  if (!isAdmin()) {
    // The API refuses a namespace token here: say so rather than make a request bound to fail.
    replace(main, h("h1", {}, "Tokens"), h("p", { class: "notice", id: "admins-only" },
      "This page is for the server's admin token; this session is a namespace token's."));
    return;
  }
  const list = h("div", { id: "token-list" });
  const problem = h("div", {});
  const mine = (session() || {}).token_name;

  async function load() {
    const tokens = await api("GET", "/tokens");
    replace(list, listTable({
      columns: [
        { title: "Id", cell: (t) => h("code", {}, t.id) },
        { title: "Name", cell: (t) => t.name === mine ? h("span", {}, t.name, " ", h("span", { class: "muted" }, "(this session's)")) : t.name },
        { title: "Namespace", cell: (t) => t.namespace || h("span", { class: "muted" }, "server-wide") },
        { title: "Role", cell: (t) => t.role },
        { title: "Created", cell: (t) => h("span", { title: when(t.created) }, ago(t.created)) },
        { title: "", cell: (t) => confirmButton({
          action: "delete", text: "Delete", confirmText: `Delete ${t.name || t.id}`,
          act: async () => {
            replace(problem);
            await api("DELETE", `/tokens/${encodeURIComponent(t.id)}`);
            await load();
          },
          onError: (error) => replace(problem, errorBox(error)),
        }) },
      ],
      key: (t) => t.id,
      rows: tokens,
      empty: "No token.",
    }));
  }

  let lastNs = "";
  try { lastNs = sessionStorage.getItem("faasbox.namespace") || ""; } catch { /* storage off */ }
  const ns = h("input", { name: "namespace", placeholder: "demo", value: lastNs });
  const role = h("select", { name: "role" }, h("option", { value: "admin" }, "admin"), h("option", { value: "invoke" }, "invoke"));
  const name = h("input", { name: "name", placeholder: "ci" });
  const command = h("pre", { class: "cmd", id: "create-command" });
  const update = () => {
    const parts = ["faasbox", "token", "create"];
    if (ns.value.trim()) parts.push("--namespace", shellQuote(ns.value.trim()));
    if (role.value !== "admin") parts.push("--role", role.value);
    if (name.value.trim()) parts.push("--name", shellQuote(name.value.trim()));
    replace(command, parts.join(" "));
  };
  for (const el of [ns, role, name]) el.addEventListener("input", update);
  update();

  replace(main,
    h("div", { class: "page-head" }, h("h1", {}, "Tokens")),
    list, problem,
    h("section", { class: "card", id: "create-token" },
      h("h2", {}, "Create a token"),
      h("p", { class: "muted" }, "A token is shown once, to whoever creates it, so it is made with the CLI on a machine you trust, never in the browser. Without a namespace it is a server-wide admin token."),
      h("div", { class: "inline" }, h("label", {}, "Namespace", ns), h("label", {}, "Role", role), h("label", {}, "Name", name)),
      command));
  await load();
}
