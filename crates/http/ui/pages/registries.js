// pages/registries.js: the namespace's registry credentials and, for admins, the global ones
// (url, host, user name and times; passwords are never answered); add and delete.

import { confirmButton, h, replace } from "../dom.js";
import { api, errorBox, isAdmin } from "../api.js";
import { listTable } from "../table.js";
import { ago } from "../format.js";

function registryList(rows, remove, problem) {
  return listTable({
    columns: [
      { title: "Registry", cell: (r) => h("code", {}, r.url) },
      { title: "Scope", cell: (r) => r.scope },
      { title: "User", cell: (r) => r.username },
      { title: "Updated", cell: (r) => ago(r.updated) },
      { title: "", cell: (r) => confirmButton({
        action: "delete", text: "Delete", confirmText: `Delete ${r.host || r.url}`,
        act: () => remove(r), onError: (error) => replace(problem, errorBox(error)),
      }) },
    ],
    key: (r) => `${r.scope}:${r.url}`,
    rows,
    empty: "None.",
  });
}

function addForm(id, scopes, add) {
  const url = h("input", { name: "url", required: true, placeholder: "https://registry.example.com", size: 30 });
  const username = h("input", { name: "username", required: true, autocomplete: "off" });
  const password = h("input", { name: "password", type: "password", required: true, autocomplete: "new-password" });
  const scope = scopes ? h("select", { name: "scope" }, scopes.map((s) => h("option", { value: s }, s))) : null;
  const result = h("div", {});
  const button = h("button", { type: "submit", "data-action": "add-registry" }, "Add");
  return h("form", {
    id, class: "inline",
    onsubmit: async (e) => {
      e.preventDefault();
      replace(result);
      button.disabled = true;
      const body = { url: url.value.trim(), username: username.value, password: password.value };
      if (scope) body.scope = scope.value;
      try {
        await add(body);
        url.value = ""; username.value = "";
      } catch (error) {
        result.appendChild(errorBox(error));
      }
      password.value = "";
      button.disabled = false;
    },
  }, h("label", {}, "URL", url), h("label", {}, "User", username), h("label", {}, "Password", password),
  scope ? h("label", {}, "Scope", scope) : null, button, result);
}

export default async function render(main, { ns }) {
  const base = `/namespaces/${encodeURIComponent(ns)}/registries`;
  const own = h("div", { id: "namespace-registries" });
  const ownProblem = h("div", {});
  const global = h("div", { id: "global-registries" });
  const globalProblem = h("div", {});

  async function loadOwn() {
    replace(ownProblem);
    const rows = await api("GET", base);
    replace(own, registryList(rows, async (r) => {
      await api("DELETE", base, { query: { url: r.url } });
      await loadOwn();
    }, ownProblem));
  }
  async function loadGlobal() {
    replace(globalProblem);
    const rows = await api("GET", "/registries");
    replace(global, registryList(rows, async (r) => {
      await api("DELETE", "/registries", { query: { url: r.url, scope: r.scope } });
      await loadGlobal();
    }, globalProblem));
  }

  replace(main,
    h("div", { class: "page-head" }, h("h1", {}, "Registries"), h("span", { class: "muted" }, `namespace ${ns}`)),
    h("p", { class: "muted" }, "Credentials for pulling images. Passwords are stored encrypted and never shown."),
    h("section", { class: "card" }, h("h2", {}, `Namespace ${ns}`), own, ownProblem,
      h("h3", {}, "Add"), addForm("add-registry", null, async (body) => { await api("POST", base, { body }); await loadOwn(); })),
    isAdmin() ? h("section", { class: "card" }, h("h2", {}, "Global (every namespace)"), global, globalProblem,
      h("h3", {}, "Add"), addForm("add-global-registry", ["global", "global-private"], async (body) => { await api("POST", "/registries", { body }); await loadGlobal(); })) : null);
  await Promise.all([loadOwn(), isAdmin() ? loadGlobal() : null]);
}
