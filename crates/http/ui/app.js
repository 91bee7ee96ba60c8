// app.js: the UI's entry point. Loads the session (GET /ui/session; signed out → the sign-in
// page), renders the header (navigation, who is signed in, sign out), then starts the router.

import { h, replace } from "./dom.js";
import { errorBox, isAdmin, maybeSignedIn, session, sessionRequest, setSession } from "./api.js";
import { link, setRouteHook, startRouter } from "./router.js";

const SECTIONS = [
  ["functions", "Functions"],
  ["runs", "Runs"],
  ["flows", "Flows"],
  ["events", "Events"],
  ["routes", "Routes"],
  ["secrets", "Secrets"],
  ["registries", "Registries"],
  ["images", "Images"],
];

// Pages whose link a section of the nav marks as current (the function page is in Functions…).
const SECTION_OF = {
  function: "functions", deploy: "functions", run: "runs", flow: "flows", instance: "flows",
};

// The namespace last shown (this tab): the nav keeps its sections on pages without one.
const NS_KEY = "faasbox.namespace";
let lastNamespace = null;
try { lastNamespace = sessionStorage.getItem(NS_KEY); } catch { /* storage off */ }

function whoami(s) {
  if (!s) return "";
  const p = s.principal || {};
  const who = p.kind === "admin" ? "admin" : `${p.namespace} · ${p.role || p.kind}`;
  return s.token_name ? `${who} (token ${s.token_name})` : who;
}

async function signOut(button) {
  button.disabled = true;
  try {
    await sessionRequest("DELETE");
  } catch (error) {
    // The session may be gone already (expired, server restarted): sign in again either way.
    console.warn("sign-out:", error);
  }
  setSession(null);
  location.assign("/ui/signin");
}

function renderHeader(header, { page, params }) {
  const s = session();
  if (!s || page === "signin") {
    replace(header, h("span", { class: "brand" }, "faasbox"));
    header.hidden = page === "signin";
    return;
  }
  header.hidden = false;
  const p = s.principal || {};
  if (params.ns && params.ns !== lastNamespace) {
    lastNamespace = params.ns;
    try { sessionStorage.setItem(NS_KEY, params.ns); } catch { /* storage off: this page only */ }
  }
  const ns = params.ns || (p.kind === "namespace" ? p.namespace : lastNamespace);
  const here = SECTION_OF[page] || page;
  const item = (href, text, current) => link(href, text, current ? { "aria-current": "page" } : {});
  replace(header,
    link("/ui/", "faasbox", { class: "brand" }),
    h("nav", { id: "nav" },
      item("/ui/", "Namespaces", page === "namespaces"),
      ns ? h("span", { class: "nav-ns" },
        item(`/ui/ns/${encodeURIComponent(ns)}`, ns, page === "namespace"),
        SECTIONS.map(([key, text]) => item(`/ui/ns/${encodeURIComponent(ns)}/${key}`, text, here === key))) : null,
      isAdmin() ? h("span", { class: "nav-admin" },
        item("/ui/tokens", "Tokens", page === "tokens"),
        item("/ui/server", "Server", page === "server")) : null),
    h("span", { class: "who" },
      h("span", { id: "whoami" }, whoami(s)),
      h("button", { type: "button", "data-action": "sign-out", onclick: (e) => signOut(e.currentTarget) }, "Sign out")));
}

async function start() {
  const header = h("header", { id: "top" });
  document.body.insertBefore(header, document.body.firstChild);
  setRouteHook((route) => renderHeader(header, route));
  let s = null;
  let asked = false;
  try {
    // The sign-in page needs no session; a browser that signed out (or never signed in) has none.
    if (location.pathname !== "/ui/signin" && maybeSignedIn()) {
      asked = true;
      s = await sessionRequest("GET");
    }
  } catch (error) {
    const main = document.getElementById("main");
    main.dataset.page = "error";
    replace(main, h("h1", {}, "The server did not answer"), errorBox(error));
    main.dataset.ready = "true";
    return;
  }
  // Only an answer of the server changes the hint (the sign-in page asks nothing).
  setSession(s, { remember: asked });
  if (!s && location.pathname !== "/ui/signin") {
    const back = location.pathname + location.search;
    const next = back === "/ui/" ? "" : "?next=" + encodeURIComponent(back);
    history.replaceState(null, "", "/ui/signin" + next);
  }
  await startRouter();
}


start().catch((error) => {
  console.error("the UI did not start:", error);
});
