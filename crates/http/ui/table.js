// table.js: lists. pagedTable shows one page at a time (keyset paging with `before=`, the
// API's Faasbox-Next header), never more than one page in the DOM.

import { h, replace } from "./dom.js";
import { apiResponse, errorBox } from "./api.js";

/** Rows of one page. */
export const PAGE_SIZE = 50;

function cellOf(column, row) {
  try {
    const value = column.cell(row);
    return value === null || value === undefined ? "" : value;
  } catch (error) {
    console.warn("a table cell:", error);
    return "";
  }
}

/** A plain `table.list` of all `rows` (for short lists that the API does not page). */
export function listTable({ columns, key, rows, empty = "Nothing yet.", rowClass }) {
  if (!rows || rows.length === 0) return h("p", { class: "empty" }, empty);
  return h("table", { class: "list" },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.class }, c.title)))),
    h("tbody", {}, rows.map((row) => h("tr", { "data-key": key(row), class: rowClass ? rowClass(row) : null },
      columns.map((c) => h("td", { class: c.class }, cellOf(c, row)))))));
}

/**
 * A paged list: `load(before)` → `{rows, next}` (`before` is `null` for the first page, `next`
 * the cursor of the following page or `null`). The element has `ready` (a promise settled once
 * the first page, or its error, is shown) and `reload()` (the first page again).
 */
export function pagedTable({ columns, key, load, empty = "Nothing yet.", rowClass }) {
  const body = h("div", { class: "paged-body" });
  const pager = h("div", { class: "pager" });
  const el = h("div", { class: "paged" }, body, pager);
  // cursors[i] is the `before` of page i (null for the first).
  let cursors = [null];
  let loading = null;

  async function show(index) {
    const mine = Symbol("load");
    loading = mine;
    el.setAttribute("aria-busy", "true");
    let result;
    try {
      result = await load(cursors[index]);
    } catch (error) {
      if (loading !== mine) return;
      replace(body, errorBox(error));
      replace(pager);
      el.removeAttribute("aria-busy");
      return;
    }
    if (loading !== mine) return;
    const rows = (result && result.rows) || [];
    const next = (result && result.next) || null;
    cursors = cursors.slice(0, index + 1);
    if (next) cursors.push(next);
    replace(body, rows.length === 0 && index === 0
      ? h("p", { class: "empty" }, empty)
      : h("table", { class: "list" },
        h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.class }, c.title)))),
        h("tbody", {}, rows.map((row) => h("tr", { "data-key": key(row), class: rowClass ? rowClass(row) : null },
          columns.map((c) => h("td", { class: c.class }, cellOf(c, row))))))));
    replace(pager,
      index > 0 ? h("button", { type: "button", "data-action": "prev-page", onclick: () => show(index - 1) }, "← Newer") : null,
      index > 0 || next ? h("span", { class: "page-number" }, `page ${index + 1}`) : null,
      next ? h("button", { type: "button", "data-action": "next-page", onclick: () => show(index + 1) }, "Older →") : null);
    el.removeAttribute("aria-busy");
    el.dataset.page = String(index + 1);
  }

  el.ready = show(0);
  el.reload = () => { cursors = [null]; return show(0); };
  return el;
}

/**
 * A `load` for pagedTable over a paged API list (a bare JSON array, `Faasbox-Next` when a
 * page is full): `apiPage("/namespaces/a/runs", {function: "f"})`.
 */
export function apiPage(path, query = {}) {
  return async (before) => {
    const response = await apiResponse("GET", path, { query: { ...query, limit: PAGE_SIZE, before } });
    const rows = await response.json();
    return { rows: Array.isArray(rows) ? rows : [], next: response.headers.get("Faasbox-Next") };
  };
}

/** A two-column `table.kv` of `[label, value]` pairs (pairs whose value is null are left out). */
export function kvTable(pairs) {
  return h("table", { class: "kv" }, h("tbody", {},
    pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))));
}

/** A status word styled by its value (`span.status.<status>`). */
export function statusTag(status) {
  const s = String(status || "").toLowerCase();
  return h("span", { class: `status ${s.replace(/[^a-z_]/g, "")}` }, s || "—");
}

/** A number cell (right-aligned by style.css when the column says `class: "num"`). */
export function num(n) {
  return n === null || n === undefined ? "—" : String(n);
}
