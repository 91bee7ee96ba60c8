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

/**
 * Set by the sign-in page (its answer carries the CSRF token, which is kept) and by app.js after
 * GET /ui/session (whose answer never carries it: the kept one is used).
 */
export function setSession(value, { remember = true } = {}) {
  if (value && value.csrf) {
    keepCsrf(value.csrf);
  } else if (value) {
    value = { ...value, csrf: keptCsrf() };
  }
  current = value;
  if (remember && !value) keepCsrf(null);
}

// The session's CSRF token, kept in this origin's storage from sign-in to sign-out: the server
// answers it only at sign-in, so the cookie alone (stolen, or sent by a same-origin page) never
// yields it. Pages the gateway serves on this origin run sandboxed (an opaque origin): they
// cannot read this storage. Without a kept token the shell goes straight to the sign-in page
// instead of asking GET /ui/session.
const CSRF_KEY = "faasbox.csrf";

function keepCsrf(token) {
  try {
    if (token) localStorage.setItem(CSRF_KEY, token);
    else localStorage.removeItem(CSRF_KEY);
  } catch {
    // storage off: the session lasts as long as this page
  }
}

function keptCsrf() {
  try {
    return localStorage.getItem(CSRF_KEY);
  } catch {
    return null;
  }
}

/** Whether this browser holds a CSRF token from a sign-in not yet ended (else: sign in). */
export function maybeSignedIn() {
  return Boolean(keptCsrf());
}

/** Forgets the session kept in this browser (signed out, or the server said it ended). */
export function rememberSignedIn(yes) {
  if (!yes) keepCsrf(null);
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

/** Whether an answer says this browser's session is over (ended, or its CSRF token lost). */
function sessionGone(status, code) {
  return (status === 401 && code === "faasbox.auth.session") || (status === 403 && code === "faasbox.auth.csrf");
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
    if (sessionGone(response.status, error.code) || (response.status === 401 && !current)) toSignin();
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
    if (sessionGone(response.status, error.code)) toSignin();
    throw error;
  }
  const type = response.headers.get("Content-Type") || "";
  if (type.startsWith("text/html")) {
    throw new Error("This server does not serve /ui/metrics (the UI's way to /metrics): update the server.");
  }
  return response.text();
}
