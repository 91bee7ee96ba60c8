// pages/events.js: the events a namespace received (newest first, paged), a form to send one
// (type, source, JSON data), and the namespace's subscriptions.

import { h, replace } from "../dom.js";
import { api, errorBox } from "../api.js";
import { link } from "../router.js";
import { apiPage, listTable, pagedTable } from "../table.js";
import { ago, json, when } from "../format.js";

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function dataPreview(event) {
  if (!("data" in event) && !("data_base64" in event)) return h("span", { class: "muted" }, "(no data)");
  const text = "data" in event ? json(event.data) : `(base64) ${event.data_base64}`;
  return h("details", {}, h("summary", {}, text.length > 60 ? text.slice(0, 60).replace(/\s+/g, " ") + "…" : text.replace(/\s+/g, " ")),
    h("pre", { class: "block" }, json(event)));
}

export default async function render(main, { ns }) {
  const enc = encodeURIComponent(ns);
  const base = `/namespaces/${enc}`;

  const table = pagedTable({
    columns: [
      { title: "Received", cell: (e) => h("span", { title: when(e.received) }, ago(e.received)) },
      { title: "Type", cell: (e) => h("code", {}, (e.event && e.event.type) || "") },
      { title: "Source", cell: (e) => (e.event && e.event.source) || "" },
      { title: "Id", cell: (e) => h("code", {}, (e.event && e.event.id) || "") },
      { title: "Data", cell: (e) => (e.event ? dataPreview(e.event) : "") },
    ],
    key: (e) => String((e.event && e.event.id) || e.seq),
    load: apiPage(`${base}/events`),
    empty: "No event received yet.",
  });

  const type = h("input", { name: "type", required: true, placeholder: "com.example.order.created", size: 32 });
  const source = h("input", { name: "source", required: true, value: "faasbox-ui", size: 20 });
  const data = h("textarea", { name: "data", rows: 4, placeholder: '{"order": 42}' });
  const result = h("div", { class: "send-result" });
  const send = h("button", { type: "submit", "data-action": "send-event" }, "Send");
  const form = h("form", {
    id: "send-event", class: "stack",
    onsubmit: async (e) => {
      e.preventDefault();
      replace(result);
      const event = { specversion: "1.0", id: newId(), type: type.value.trim(), source: source.value.trim() };
      const text = data.value.trim();
      if (text) {
        try {
          event.data = JSON.parse(text);
        } catch (error) {
          result.appendChild(errorBox(new Error(`The data is not JSON (${error.message}): write a JSON value, e.g. {"order": 42}, or leave it empty.`)));
          return;
        }
        event.datacontenttype = "application/json";
      }
      send.disabled = true;
      try {
        await api("POST", `${base}/events`, { body: JSON.stringify(event), headers: { "Content-Type": "application/cloudevents+json" } });
        result.appendChild(h("div", { class: "notice" }, `Sent event ${event.id}.`));
        await table.reload();
      } catch (error) {
        result.appendChild(errorBox(error));
      }
      send.disabled = false;
    },
  }, h("div", { class: "inline" }, h("label", {}, "Type", type), h("label", {}, "Source", source)),
  h("label", {}, "Data (JSON, optional)", data), h("div", {}, send), result);

  const subscriptions = h("div", {});
  replace(main,
    h("div", { class: "page-head" }, h("h1", {}, "Events"), h("span", { class: "muted" }, `namespace ${ns}`)),
    h("section", { id: "events", class: "card" }, h("h2", {}, "Received"), table),
    h("div", { class: "grid2" },
      h("section", { id: "send", class: "card" }, h("h2", {}, "Send an event"), form),
      h("section", { id: "subscriptions", class: "card" }, h("h2", {}, "Subscriptions"), subscriptions)));

  const subs = api("GET", `${base}/subscriptions`).then((rows) => {
    replace(subscriptions, listTable({
      columns: [
        { title: "Name", cell: (s) => s.name },
        { title: "Type", cell: (s) => h("code", {}, s.type) },
        { title: "Source", cell: (s) => s.source || "any" },
        { title: "Runs", cell: (s) => link(`/ui/ns/${enc}/functions/${encodeURIComponent(s.function)}`, s.function) },
      ],
      key: (s) => s.name,
      rows,
      empty: "No subscription: `faasbox subscription create` makes one.",
    }));
  }, (error) => replace(subscriptions, errorBox(error)));
  await Promise.all([table.ready, subs]);
}
