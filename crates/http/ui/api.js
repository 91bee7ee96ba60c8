// api.js: every request of the UI goes through here: /ui/api/v1{path} with the session's CSRF
// header, errors turned into ApiError and shown with errorBox.

import { h } from "./dom.js";

let current = null;

/** An error answer of the API: `{"error": {"code", "message", "details"}}`. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** The signed-in session (set by the shell before any page renders). */
export function session() {
  return current;
}

/** Set by app.js after GET /ui/session (and by the sign-in page). */
export function setSession(value, { remember = true } = {}) {
  current = value;
  if (remember) rememberSignedIn(Boolean(value));
}

// A hint kept in the browser (a boolean, never the session or the token): whether this browser
// signed in and did not sign out since. Without it the shell goes straight to the sign-in page
// instead of asking GET /ui/session for an answer known to be 401 (which the browser would log
// as a failed request).
const SIGNED_IN_HINT = "faasbox.signed-in";

/** Records whether this browser holds a session (see `maybeSignedIn`). */
export function rememberSignedIn(yes) {
  try {
    if (yes) localStorage.setItem(SIGNED_IN_HINT, "1");
    else localStorage.removeItem(SIGNED_IN_HINT);
  } catch {
    // storage off: the shell always asks the server
  }
}

/** False when this browser has not signed in since it last signed out (no need to ask). */
export function maybeSignedIn() {
  try {
    return localStorage.getItem(SIGNED_IN_HINT) === "1";
  } catch {
    return true;
  }
}

/** True when the session's principal is the server admin. */
export function isAdmin() {
  return Boolean(current && current.principal && current.principal.kind === "admin");
}

function url(path, query) {
  let u = "/ui/api/v1" + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === null || v === undefined || v === "") continue;
      params.set(k, String(v));
    }
    const s = params.toString();
    if (s) u += (u.includes("?") ? "&" : "?") + s;
  }
  return u;
}

async function errorOf(response) {
  let code = "faasbox.http." + response.status;
  let message = `${response.status} ${response.statusText}`.trim();
  let details;
  try {
    const text = await response.text();
    try {
      const body = JSON.parse(text);
      if (body && body.error) {
        code = body.error.code || code;
        message = body.error.message || message;
        details = body.error.details;
      } else if (text) {
        message = text;
      }
    } catch {
      if (text) message = text.slice(0, 500);
    }
  } catch {
    // the body could not be read: keep the status line
  }
  return new ApiError(response.status, code, message, details);
}

/** Sends the browser to the sign-in page (the session is gone). */
export function toSignin() {
  current = null;
  rememberSignedIn(false);
  if (location.pathname !== "/ui/signin") {
    const back = location.pathname + location.search;
    location.assign("/ui/signin?next=" + encodeURIComponent(back));
  }
}

/** The Response of an API request (2xx only; otherwise throws ApiError). */
export async function apiResponse(method, path, { body, query, headers, signal } = {}) {
  const init = { method, headers: { Accept: "application/json", ...(headers || {}) }, signal, credentials: "same-origin" };
  if (current && current.csrf) init.headers["X-Faasbox-Csrf"] = current.csrf;
  if (body !== undefined && body !== null) {
    if (typeof body === "string") {
      init.body = body;
      if (!init.headers["Content-Type"]) init.headers["Content-Type"] = "text/plain; charset=utf-8";
    } else {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
  }
  const response = await fetch(url(path, query), init);
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && (error.code === "faasbox.auth.session" || !current)) toSignin();
    throw error;
  }
  return response;
}

/** The parsed JSON answer of an API request (`null` for 204; the text with `text: true`). */
export async function api(method, path, options = {}) {
  const response = await apiResponse(method, path, options);
  if (response.status === 204) return null;
  const text = await response.text();
  if (options.text) return text;
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(response.status, "faasbox.ui.bad_answer", `The server's answer to ${method} ${path} is not JSON.`);
  }
}

/**
 * The `.error` box for any error. Its text is the message (which says the fix); the code is
 * in `data-code` (style.css shows it before the message).
 */
export function errorBox(error) {
  if (error instanceof ApiError) {
    return h("div", { class: "error", "data-code": error.code, role: "alert" }, error.message);
  }
  const message = error && error.message ? error.message : String(error);
  return h("div", { class: "error", "data-code": "faasbox.ui.error", role: "alert" }, message);
}

/**
 * The session endpoint `/ui/session` (not below /ui/api): `GET` → the session or `null` when
 * signed out (401); `POST {token}` signs in (throws ApiError on a bad token); `DELETE` signs out.
 */
export async function sessionRequest(method, body) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (current && current.csrf) init.headers["X-Faasbox-Csrf"] = current.csrf;
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch("/ui/session", init);
  if (method === "GET" && response.status === 401) return null;
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return null;
  if (!(response.headers.get("Content-Type") || "").includes("json")) {
    throw new Error("This server has no UI sessions (/ui/session did not answer JSON): update the server.");
  }
  return response.json();
}

/** The text of `GET /ui/metrics` (the server's /metrics for a signed-in admin). */
export async function metricsText() {
  const headers = { Accept: "text/plain" };
  if (current && current.csrf) headers["X-Faasbox-Csrf"] = current.csrf;
  const response = await fetch("/ui/metrics", { headers, credentials: "same-origin" });
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && error.code === "faasbox.auth.session") toSignin();
    throw error;
  }
  const type = response.headers.get("Content-Type") || "";
  if (type.startsWith("text/html")) {
    throw new Error("This server does not serve /ui/metrics (the UI's way to /metrics): update the server.");
  }
  return response.text();
}
