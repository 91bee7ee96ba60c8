// dom.js: build DOM elements from data without ever parsing HTML (textContent and attributes only).

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "value" && "value" in el && !(el instanceof SVGElement)) {
      el.value = String(value);
    } else if (key === "checked" || key === "disabled" || key === "selected") {
      el[key] = Boolean(value);
      if (value) el.setAttribute(key, "");
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) {
      append(el, child);
    } else if (child instanceof Node) {
      el.appendChild(child);
    } else {
      el.appendChild(document.createTextNode(String(child)));
    }
  }
}

/** An HTML element: `h("a", {href: "/ui/"}, "home")`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** The same in the SVG namespace. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** Empties `el` and appends the children (same rules as `h`). */
export function replace(el, ...children) {
  while (el.firstChild) el.removeChild(el.firstChild);
  append(el, children);
  return el;
}

/**
 * A destructive action that asks in the page (never window.confirm): a button
 * `data-action=<action>`; its first click shows `button[data-action=confirm]` (and
 * `button[data-action=dismiss]`) next to it; the confirm button calls `act()`. `act` may be
 * async; while it runs the buttons are disabled; an error it throws goes to `onError` (else the
 * console).
 */
export function confirmButton({ action = "delete", text = "Delete", confirmText = "Confirm", act, onError }) {
  const asking = h("span", { class: "confirm-ask" });
  const first = h("button", { type: "button", "data-action": action, onclick: () => ask() }, text);
  const wrap = h("span", { class: "confirm-wrap" }, first, asking);
  function done() {
    replace(asking);
    first.disabled = false;
  }
  function ask() {
    first.disabled = true;
    const yes = h("button", {
      type: "button", "data-action": "confirm",
      onclick: async () => {
        yes.disabled = true;
        no.disabled = true;
        try {
          await act();
        } catch (error) {
          if (onError) onError(error); else console.warn(`${action}:`, error);
        }
        done();
      },
    }, confirmText);
    const no = h("button", { type: "button", "data-action": "dismiss", onclick: done }, "Cancel");
    replace(asking, " ", yes, " ", no);
    yes.focus();
  }
  return wrap;
}
