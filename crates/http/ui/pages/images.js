// pages/images.js: the namespace's images, image builds and base images; for admins the
// server-wide images too.

import { h, replace } from "../dom.js";
import { api, errorBox, isAdmin } from "../api.js";
import { listTable, statusTag } from "../table.js";
import { ago, bytes, when } from "../format.js";

function digest(d) {
  if (!d) return h("span", { class: "muted" }, "—");
  return h("code", { title: d }, d.replace(/^sha256:/, "").slice(0, 12));
}

function imageTable(rows, empty) {
  return listTable({
    columns: [
      { title: "Name", cell: (i) => h("code", {}, i.name) },
      { title: "Digest", cell: (i) => digest(i.digest) },
      { title: "Size", class: "num", cell: (i) => bytes(i.size) },
      { title: "Layers", class: "num", cell: (i) => String((i.layers || []).length) },
      { title: "Created", cell: (i) => h("span", { title: when(i.created) }, ago(i.created)) },
      { title: "Notes", cell: (i) => (i.notes || []).join("; ") },
    ],
    key: (i) => i.name,
    rows,
    empty,
  });
}

/** A section whose content loads on its own; an error shows in the section only. */
function part(id, title, loadInto) {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const el = h("section", { id, class: "card" }, h("h2", {}, title), body);
  const ready = loadInto().then((content) => replace(body, content), (error) => replace(body, errorBox(error)));
  return { el, ready };
}

export default async function render(main, { ns }) {
  const base = `/namespaces/${encodeURIComponent(ns)}`;
  const parts = [
    part("images", "Images", async () => imageTable(await api("GET", `${base}/images`),
      "No image in this namespace: `faasbox image import` or `faasbox image pull --namespace` adds one.")),
    part("image-builds", "Image builds", async () => listTable({
      columns: [
        { title: "Name", cell: (b) => h("code", {}, b.name) },
        { title: "Base image", cell: (b) => b.base_image },
        { title: "Language", cell: (b) => String(b.language) },
        { title: "Status", cell: (b) => h("span", { title: b.reason || "" }, statusTag(b.status)) },
        { title: "Reason", cell: (b) => b.reason || "" },
        { title: "Digest", cell: (b) => digest(b.digest) },
        { title: "Changed", cell: (b) => ago(b.modified) },
      ],
      key: (b) => b.name,
      rows: await api("GET", `${base}/image-builds`),
      empty: "No image build.",
    })),
    part("base-images", "Base images", async () => listTable({
      columns: [
        { title: "Name", cell: (b) => h("code", {}, b.name) },
        { title: "Image", cell: (b) => h("code", {}, b.image) },
        { title: "Language", cell: (b) => String(b.language) },
        { title: "Status", cell: (b) => statusTag(b.status) },
        { title: "Reason", cell: (b) => b.reason || "" },
        { title: "Digest", cell: (b) => digest(b.digest) },
        { title: "Changed", cell: (b) => ago(b.modified) },
      ],
      key: (b) => b.name,
      rows: await api("GET", `${base}/base-images`),
      empty: "No base image: `faasbox base-image create` makes one (needed to deploy from code).",
    })),
  ];
  if (isAdmin()) {
    parts.push(part("server-images", "Server-wide images (every namespace)", async () =>
      imageTable(await api("GET", "/images"), "No server-wide image.")));
  }
  replace(main,
    h("div", { class: "page-head" }, h("h1", {}, "Images"), h("span", { class: "muted" }, `namespace ${ns}`)),
    parts.map((p) => p.el));
  await Promise.all(parts.map((p) => p.ready));
}
