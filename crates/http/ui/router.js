// router.js: the client router. Every page is a real URL below /ui/ (bookmarkable); a page is a
// module of pages/ loaded on first use (import()), rendered into a fresh <main id="main">.

import { h, replace } from "./dom.js";
import { errorBox } from "./api.js";

/** Every page URL of docs/UI.md: pattern → module name (pages/<name>.js). `*` takes the rest. */
const ROUTES = [
  ["/ui/signin", "signin"],
  ["/ui/", "namespaces"],
  ["/ui/tokens", "tokens"],
  ["/ui/server", "server"],
  ["/ui/ns/:ns", "namespace"],
  ["/ui/ns/:ns/functions", "functions"],
  ["/ui/ns/:ns/functions/:fn", "function"],
  ["/ui/ns/:ns/deploy", "deploy"],
  ["/ui/ns/:ns/runs", "runs"],
  ["/ui/ns/:ns/runs/:id", "run"],
  ["/ui/ns/:ns/flows", "flows"],
  ["/ui/ns/:ns/flows/*path", "flow"],
  ["/ui/ns/:ns/instances/:id", "instance"],
  ["/ui/ns/:ns/events", "events"],
  ["/ui/ns/:ns/routes", "routes"],
  ["/ui/ns/:ns/secrets", "secrets"],
  ["/ui/ns/:ns/registries", "registries"],
  ["/ui/ns/:ns/images", "images"],
];

/** The page of a path: `{page, params}` or `null` when no page has that URL. */
export function match(pathname) {
  const trimmed = pathname.length > 4 && pathname.endsWith("/") ? pathname.slice(0, -1) : pathname;
  const parts = trimmed.split("/");
  for (const [pattern, page] of ROUTES) {
    const want = pattern.split("/");
    const params = {};
    let ok = true;
    for (let i = 0; i < want.length; i++) {
      const w = want[i];
      if (w.startsWith("*")) {
        const rest = parts.slice(i).join("/");
        if (!rest) { ok = false; break; }
        params[w.slice(1)] = decodeURIComponent(rest);
        return { page, params };
      }
      if (i >= parts.length) { ok = false; break; }
      if (w.startsWith(":")) {
        if (!parts[i]) { ok = false; break; }
        params[w.slice(1)] = decodeURIComponent(parts[i]);
      } else if (w !== parts[i]) {
        ok = false;
        break;
      }
    }
    if (ok && parts.length === want.length) return { page, params };
  }
  return null;
}

let leave = null;
let generation = 0;
let onRoute = () => {};

/** Called by app.js: `hook({page, params, query})` runs before each page renders (the nav). */
export function setRouteHook(hook) {
  onRoute = hook;
}

/** Pushes `url` onto the history and renders its page. */
export function navigate(url, { replace: replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  return render();
}

/** An `<a>` whose plain click navigates without a reload (a middle click opens a tab). */
export function link(href, text, attrs = {}) {
  return h("a", { ...attrs, href }, text);
}

function isOurs(a, event) {
  if (event.defaultPrevented || event.button !== 0) return false;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return false;
  if (a.target && a.target !== "_self") return false;
  if (a.hasAttribute("download")) return false;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return false;
  if (!url.pathname.startsWith("/ui/")) return false;
  if (url.pathname.startsWith("/ui/api/") || url.pathname.startsWith("/ui/assets/")) return false;
  return true;
}

function freshMain() {
  const old = document.getElementById("main");
  const main = h("main", { id: "main" });
  if (old) old.replaceWith(main);
  else document.body.appendChild(main);
  return main;
}

/** Renders the page of the current URL (leaving the previous one first). */
export async function render() {
  const mine = ++generation;
  if (leave) {
    const stop = leave;
    leave = null;
    try { stop(); } catch (error) { console.warn("leaving the page:", error); }
  }
  const query = new URLSearchParams(location.search);
  const found = match(location.pathname);
  const page = found ? found.page : "notfound";
  const params = found ? found.params : {};
  const main = freshMain();
  main.dataset.page = page;
  try {
    onRoute({ page, params, query });
  } catch (error) {
    console.warn("the navigation:", error);
  }
  document.title = found ? `${page} · faasbox` : "no such page · faasbox";
  if (!found) {
    replace(main, h("h1", {}, "No such page"),
      h("p", {}, `The UI has no page at ${location.pathname}. `, link("/ui/", "Go to the namespaces.")));
    main.dataset.ready = "true";
    return;
  }
  try {
    const module = await import(`./pages/${page}.js`);
    if (mine !== generation) return;
    if (typeof module.default !== "function") {
      replace(main, h("h1", {}, "Not written yet"), h("p", { class: "muted" }, `The ${page} page is still being written.`));
      main.dataset.ready = "true";
      return;
    }
    const result = await module.default(main, params, query);
    if (mine !== generation) {
      if (typeof result === "function") {
        try { result(); } catch { /* the page is gone anyway */ }
      }
      return;
    }
    if (typeof result === "function") leave = result;
  } catch (error) {
    if (mine !== generation) return;
    main.appendChild(errorBox(error));
  }
  main.dataset.ready = "true";
}

/** Starts the router: link clicks and the back/forward buttons render pages. */
export function startRouter() {
  document.addEventListener("click", (event) => {
    const a = event.target instanceof Element ? event.target.closest("a[href]") : null;
    if (!a || !isOurs(a, event)) return;
    event.preventDefault();
    const url = new URL(a.href, location.href);
    navigate(url.pathname + url.search + url.hash);
  });
  window.addEventListener("popstate", () => { render(); });
  return render();
}
