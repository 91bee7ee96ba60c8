// pages/signin.js: sign in with a faasbox token (POST /ui/session); the token goes to the
// server once and is never kept in the browser (the session cookie is HttpOnly).

import { h, replace } from "../dom.js";
import { errorBox, sessionRequest, setSession } from "../api.js";

function nextUrl(query) {
  const next = query.get("next");
  // Only a page of the UI: never another site or a path outside /ui/.
  if (next && next.startsWith("/ui/") && !next.startsWith("//") && !next.startsWith("/ui/signin")) return next;
  return "/ui/";
}

export default async function render(main, params, query) {
  const problem = h("div", { class: "signin-problem" });
  const token = h("input", {
    name: "token", type: "password", autocomplete: "off", spellcheck: "false", required: true,
    placeholder: "fbx_…", "aria-label": "Token",
  });
  const button = h("button", { type: "submit", "data-action": "sign-in" }, "Sign in");
  const form = h("form", {
    id: "signin", class: "card signin",
    onsubmit: async (event) => {
      event.preventDefault();
      replace(problem);
      const value = token.value.trim();
      if (!value) {
        problem.appendChild(errorBox(new Error("Paste a faasbox token: `faasbox token create` makes one, and the server writes the admin token to admin.token in its data directory.")));
        return;
      }
      button.disabled = true;
      try {
        const s = await sessionRequest("POST", { token: value });
        token.value = "";
        setSession(s);
        // A full load: the shell starts again with the session (the header, the router).
        location.assign(nextUrl(query));
      } catch (error) {
        problem.appendChild(errorBox(error));
        button.disabled = false;
        token.focus();
      }
    },
  },
  h("h1", {}, "Sign in to faasbox"),
  h("p", { class: "hint" }, "Paste an API token. The browser keeps only a session cookie; the token is not stored."),
  h("label", {}, "Token", token),
  button,
  problem);
  replace(main, form);
  token.focus();
}
