// pages/secrets.js: a namespace's secrets by name and times; set or replace one (the value in
// a password field, cleared once sent), delete one (asked in the page). A value is never
// shown: the API never answers one.

import { confirmButton, h, replace } from "../dom.js";
import { api, errorBox } from "../api.js";
import { listTable } from "../table.js";
import { ago, when } from "../format.js";

export default async function render(main, { ns }) {
  const base = `/namespaces/${encodeURIComponent(ns)}/secrets`;
  const list = h("div", { id: "secret-list" });
  const listProblem = h("div", {});

  async function load() {
    const secrets = await api("GET", base);
    replace(list, listTable({
      columns: [
        { title: "Name", cell: (s) => h("code", {}, s.name) },
        { title: "Created", cell: (s) => h("span", { title: when(s.created) }, ago(s.created)) },
        { title: "Value set", cell: (s) => h("span", { title: when(s.updated) }, ago(s.updated)) },
        { title: "", cell: (s) => h("span", {},
          h("button", { type: "button", "data-action": "replace", onclick: () => { name.value = s.name; value.focus(); } }, "Replace"),
          " ",
          confirmButton({
            action: "delete", text: "Delete", confirmText: `Delete ${s.name}`,
            act: async () => {
              replace(listProblem);
              await api("DELETE", `${base}/${encodeURIComponent(s.name)}`);
              await load();
            },
            onError: (error) => replace(listProblem, errorBox(error)),
          })) },
      ],
      key: (s) => s.name,
      rows: secrets,
      empty: "No secret yet.",
    }));
  }

  const name = h("input", { name: "name", required: true, placeholder: "DB_PASSWORD", autocomplete: "off", spellcheck: "false" });
  const value = h("input", { name: "value", type: "password", required: true, autocomplete: "new-password" });
  const result = h("div", {});
  const button = h("button", { type: "submit", "data-action": "set-secret" }, "Set");
  const form = h("form", {
    id: "set-secret", class: "inline",
    onsubmit: async (e) => {
      e.preventDefault();
      replace(result);
      const secretName = name.value.trim();
      if (!secretName) return;
      button.disabled = true;
      try {
        // The raw body is the value (the API takes any Content-Type but JSON as the value).
        await api("PUT", `${base}/${encodeURIComponent(secretName)}`, { body: value.value, headers: { "Content-Type": "application/octet-stream" } });
        value.value = "";
        name.value = "";
        result.appendChild(h("div", { class: "notice" }, `Secret ${secretName} set.`));
        await load();
      } catch (error) {
        value.value = "";
        result.appendChild(errorBox(error));
      }
      button.disabled = false;
    },
  }, h("label", {}, "Name", name), h("label", {}, "Value", value), button);

  replace(main,
    h("div", { class: "page-head" }, h("h1", {}, "Secrets"), h("span", { class: "muted" }, `namespace ${ns}`)),
    h("p", { class: "muted" }, "Values are never shown: functions read them at run time. Setting a name that exists replaces its value."),
    list, listProblem,
    h("section", { class: "card" }, h("h2", {}, "Set or replace a secret"), form, result));
  await load();
}
