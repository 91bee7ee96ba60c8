// pages/deploy.js: deploy a function at /ui/ns/{ns}/deploy, from an image (`PUT
// …/functions/{fn}` with the spec) or from code (the picked file or folder packed by tar.js,
// `PUT …/functions/{fn}/code`, then its build log polled live with `…/code/logs?after=` until
// the build ends). A deploy that worked goes to the function's page.

import { h, replace } from "../dom.js";
import { api, errorBox } from "../api.js";
import { link, navigate } from "../router.js";
import { logView } from "../logs.js";
import { packSource } from "../tar.js";

/** How often the build log is polled. */
const POLL_MS = 500;
const CONTRACTS = ["http", "cmd", "file", "openwhisk"];
const SIZES = ["small", "medium", "large"];
/** The handler's form per language (README "Functions from code"). */
const HANDLER_HINTS = { python3: "hello.handle", nodejs: "index", shell: "run.sh" };

function enc(part) {
  return encodeURIComponent(part);
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (signal) signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/** A labelled field. */
function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", {}, label), control, hint ? h("small", { class: "hint" }, hint) : null);
}

/** A select of `values` (strings, or `[value, label]`). */
function select(name, values, chosen) {
  return h("select", { name }, values.map((v) => {
    const [value, label] = Array.isArray(v) ? v : [v, v];
    return h("option", { value, selected: value === chosen }, label);
  }));
}

/** Spec fields this page has no field for: a new revision of a deployed function keeps them. */
const KEPT_FROM_IMAGE_SPEC = ["runtime", "disk", "secrets", "services", "input", "schema", "code", "binary", "main"];
const KEPT_FROM_CODE_SPEC = ["secrets", "services", "schema"];

/** The fields of `spec` named in `keys` that it has. */
function kept(spec, keys) {
  const out = {};
  for (const key of keys) if (spec && spec[key] !== undefined && spec[key] !== null) out[key] = spec[key];
  return out;
}

/** A form problem found before any request (shown like an API error, code `faasbox.ui.form`). */
class FormProblem extends Error {}

function problemBox(message) {
  return h("div", { class: "error", "data-code": "faasbox.ui.form", role: "alert" }, h("span", { class: "error-message" }, message));
}

function showProblem(where, error) {
  replace(where, error instanceof FormProblem ? problemBox(error.message) : errorBox(error));
}

/** `KEY=VALUE` lines as an object; a line without `=` is a problem. */
function envs(textValue) {
  const out = {};
  textValue.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new FormProblem(`Environment line ${i + 1} ("${line}") is not KEY=VALUE.`);
    out[line.slice(0, eq).trim()] = line.slice(eq + 1);
  });
  return out;
}

/** The function name of a form (the API checks its form and says the fix). */
function functionName(form) {
  const name = form.elements.name.value.trim();
  if (!name) throw new FormProblem("Give the function a name.");
  return name;
}

/** Scale fields given (empty ones are left to the API's defaults). */
function scaleOf(form) {
  const scale = {};
  for (const key of ["min", "max", "concurrency"]) {
    const value = form.elements[`scale.${key}`].value.trim();
    if (value === "") continue;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new FormProblem(`Scale ${key} must be a whole number, not "${value}".`);
    scale[key] = n;
  }
  const idle = form.elements["scale.idle_timeout"].value.trim();
  if (idle) scale.idle_timeout = idle;
  return Object.keys(scale).length ? scale : null;
}

/** The size, timeout, scale, envs and network fields shared by both forms. */
function limitsFields() {
  return h(
    "fieldset",
    { class: "limits" },
    h("legend", {}, "Size and scale"),
    field("Size", select("size", SIZES, "small"), "small: 256 MiB, ½ CPU · medium: 512 MiB, 1 CPU · large: 1 GiB, 2 CPUs"),
    field("Timeout", h("input", { name: "timeout", placeholder: "default (30s)" }), "per call: \"30s\", \"2m\""),
    h("div", { class: "row" },
      field("Min instances", h("input", { name: "scale.min", type: "number", min: "0", placeholder: "default (0)" })),
      field("Max instances", h("input", { name: "scale.max", type: "number", min: "1", placeholder: "default" })),
      field("Calls per instance", h("input", { name: "scale.concurrency", type: "number", min: "1", placeholder: "default" })),
      field("Idle stop after", h("input", { name: "scale.idle_timeout", placeholder: "default" }))),
    field("Environment", h("textarea", { name: "envs", rows: "3", spellcheck: "false", class: "code", placeholder: "KEY=VALUE, one a line" })),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "network", checked: true }), " outbound network"),
  );
}

/** A word of a command as a shell would need it written (the server splits `cmd` like a shell). */
function shellWord(word) {
  return /^[A-Za-z0-9_@%+=:,.\/-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

/** Fills the fields of `limitsFields` from a deployed spec (so a new revision keeps them). */
function fillLimits(form, spec) {
  if (spec.size) form.elements.size.value = spec.size;
  if (spec.timeout) form.elements.timeout.value = String(spec.timeout);
  const scale = spec.scale || {};
  for (const key of ["min", "max", "concurrency", "idle_timeout"]) {
    if (scale[key] !== undefined && scale[key] !== null) form.elements[`scale.${key}`].value = String(scale[key]);
  }
  form.elements.envs.value = Object.entries(spec.envs || {}).map(([k, v]) => `${k}=${v}`).join("\n");
  form.elements.network.checked = spec.network !== false;
}

/** The fields of `limitsFields` into `body`. */
function applyLimits(form, body) {
  body.size = form.elements.size.value;
  const timeout = form.elements.timeout.value.trim();
  if (timeout) body.timeout = timeout;
  const scale = scaleOf(form);
  if (scale) body.scale = scale;
  const environment = envs(form.elements.envs.value);
  if (Object.keys(environment).length) body.envs = environment;
  body.network = form.elements.network.checked;
  return body;
}

export default async function render(main, params, query) {
  const { ns } = params;
  const leaving = new AbortController();
  const functionPage = (name) => `/ui/ns/${enc(ns)}/functions/${enc(name)}`;

  // The first data: what can be deployed from (each list may be refused on its own).
  const [nsImages, globalImages, baseImages, imageBuilds, functions] = await Promise.all([
    api("GET", `/namespaces/${enc(ns)}/images`).catch((error) => ({ error })),
    api("GET", "/images").catch(() => []),
    api("GET", `/namespaces/${enc(ns)}/base-images`).catch((error) => ({ error })),
    api("GET", `/namespaces/${enc(ns)}/image-builds`).catch((error) => ({ error })),
    api("GET", `/namespaces/${enc(ns)}/functions`).catch(() => []),
  ]);
  const listed = (value) => (Array.isArray(value) ? value : []);
  const existing = new Map(listed(functions).map((f) => [f.name, f]));

  /** A note under a name field when the name is a deployed function (deploying replaces it). */
  function nameNote(input) {
    const note = h("small", { class: "hint name-note" });
    const update = () => {
      const name = input.value.trim();
      note.textContent = existing.has(name)
        ? `${ns}/${name} exists: deploying makes a new revision with these settings (its secrets, services, schema and other settings not shown here are kept; its page can roll back).`
        : "";
    };
    input.addEventListener("input", update);
    update();
    return note;
  }

  // --- from an image ----------------------------------------------------------------------
  const imageNames = [...new Set([...listed(nsImages), ...listed(globalImages)].map((i) => i.name))].sort();
  const imageName = h("input", { name: "name", required: true, value: query.get("name") || "", placeholder: "e.g. echo" });
  const imageNameNote = nameNote(imageName);
  const imageChoices = h("datalist", { id: "image-choices" }, imageNames.map((n) => h("option", { value: n })));
  const imageProblem = h("div", { "aria-live": "polite" });
  const imageForm = h(
    "form",
    { id: "deploy-image", class: "deploy-form", autocomplete: "off" },
    field("Name", imageName, imageNameNote),
    field("Image", h("input", { name: "image", required: true, list: "image-choices", value: query.get("image") || "", placeholder: `e.g. ${imageNames[0] || "demo/echo:latest"}` }),
      imageNames.length ? `${imageNames.length} image(s) of this namespace and the server; or a registry reference` : "an image of the namespace (see Images), or a registry reference"),
    imageChoices,
    field("Contract", select("contract", CONTRACTS, "http"), "http: a server on :8080 · cmd: direktiv-cmd · file: isolates · openwhisk: action proxy"),
    field("Command", h("input", { name: "cmd", placeholder: "the image's entrypoint" }), "replaces the image's entrypoint and cmd (split like a shell)"),
    field("Pull", select("pull", [["", "default"], "missing", "always", "never"], ""), "default: registry references always, local names when missing"),
    limitsFields(),
    imageProblem,
    h("p", {}, h("button", { type: "submit", "data-action": "deploy", class: "primary" }, "Deploy")),
    nsImages && nsImages.error ? errorBox(nsImages.error) : null,
  );

  imageForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = imageForm.querySelector("button[data-action=deploy]");
    replace(imageProblem);
    let name;
    let body;
    try {
      name = functionName(imageForm);
      const image = imageForm.elements.image.value.trim();
      if (!image) throw new FormProblem("Give the image to run (a name from the list, or a registry reference).");
      const before = existing.get(name);
      const keep = before && before.contract !== "code" ? kept(before.spec, KEPT_FROM_IMAGE_SPEC) : {};
      body = { ...keep, image, contract: imageForm.elements.contract.value };
      const cmd = imageForm.elements.cmd.value.trim();
      if (cmd) body.cmd = cmd;
      applyLimits(imageForm, body);
    } catch (error) {
      showProblem(imageProblem, error);
      return;
    }
    button.disabled = true;
    replace(imageProblem, h("p", { class: "muted" }, `Deploying ${ns}/${name}…`));
    try {
      const pull = imageForm.elements.pull.value;
      await api("PUT", `/namespaces/${enc(ns)}/functions/${enc(name)}`, { body, query: pull ? { pull } : undefined, signal: leaving.signal });
      await navigate(functionPage(name));
    } catch (error) {
      if (leaving.signal.aborted) return;
      showProblem(imageProblem, error);
      button.disabled = false;
    }
  });

  // --- from code --------------------------------------------------------------------------
  const bases = listed(baseImages).map((b) => ({ name: b.name, language: b.language, kind: "base image", ready: b.status === "READY" }));
  const builds = listed(imageBuilds).map((b) => ({ name: b.name, language: b.language, kind: "image build", ready: b.status === "READY", status: b.status }));
  const languageOf = new Map([...bases, ...builds].map((b) => [b.name, b.language]));
  const baseSelect = h(
    "select",
    { name: "base", required: true },
    h("option", { value: "" }, bases.length || builds.length ? "choose…" : "no base image yet"),
    bases.length ? h("optgroup", { label: "Base images" }, bases.map((b) => h("option", { value: b.name }, `${b.name} (${b.language})`))) : null,
    builds.length ? h("optgroup", { label: "Image builds" }, builds.map((b) => h("option", { value: b.name, disabled: !b.ready }, `${b.name} (${b.language}${b.ready ? "" : ", " + b.status})`))) : null,
  );
  const handlerInput = h("input", { name: "handler", required: true, placeholder: "e.g. hello.handle" });
  const handlerHint = h("small", { class: "hint" }, "python3: module.function · nodejs: the module · shell: the script");
  baseSelect.addEventListener("change", () => {
    const hint = HANDLER_HINTS[languageOf.get(baseSelect.value)];
    if (hint) handlerInput.placeholder = `e.g. ${hint}`;
  });
  const filesInput = h("input", { type: "file", name: "files", id: "code-files", multiple: true });
  const folderToggle = h("input", { type: "checkbox", name: "folder" });
  folderToggle.addEventListener("change", () => {
    // A folder is picked with webkitdirectory; its files come with paths inside it.
    if (folderToggle.checked) filesInput.setAttribute("webkitdirectory", "");
    else filesInput.removeAttribute("webkitdirectory");
    filesInput.value = "";
    picked.textContent = "";
  });
  const picked = h("small", { class: "hint picked" });
  filesInput.addEventListener("change", () => {
    const n = filesInput.files ? filesInput.files.length : 0;
    picked.textContent = n ? `${n} file(s) picked` : "";
  });
  const codeName = h("input", { name: "name", required: true, value: query.get("name") || "", placeholder: "e.g. hello" });
  const codeNameNote = nameNote(codeName);
  const codeProblem = h("div", { "aria-live": "polite" });
  const buildLog = logView({ id: "build-log", empty: "The build's log appears here once a deploy starts." });
  const buildState = h("p", { class: "build-state", "data-status": "" });
  const codeForm = h(
    "form",
    { id: "deploy-code", class: "deploy-form", autocomplete: "off" },
    field("Name", codeName, codeNameNote),
    field("Base image or image build", baseSelect, bases.length || builds.length ? "the interpreter the code runs on" : "create one first (Images page or `faasbox base-image create`)"),
    h("div", { class: "field" },
      h("span", {}, "Code"),
      filesInput,
      h("label", { class: "check" }, folderToggle, " pick a folder (its contents become the function's root)"),
      picked),
    h("label", { class: "field" }, h("span", {}, "Handler"), handlerInput, handlerHint),
    limitsFields(),
    codeProblem,
    h("p", {}, h("button", { type: "submit", "data-action": "deploy", class: "primary" }, "Build and deploy")),
    baseImages && baseImages.error ? errorBox(baseImages.error) : null,
    h("h3", {}, "Build log"),
    buildState,
    buildLog.element,
  );

  async function followBuild(name) {
    let after = 0;
    for (;;) {
      if (leaving.signal.aborted) return null;
      const answer = await api("GET", `/namespaces/${enc(ns)}/functions/${enc(name)}/code/logs`, { query: { after }, signal: leaving.signal });
      for (const line of answer.lines || []) buildLog.append(line);
      after = answer.next;
      buildState.dataset.status = answer.status;
      buildState.textContent = answer.done ? `Build ${answer.status}` : `Building (${answer.status})…`;
      if (answer.done) return answer;
      await sleep(POLL_MS, leaving.signal);
    }
  }

  codeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = codeForm.querySelector("button[data-action=deploy]");
    replace(codeProblem);
    let name;
    let body;
    try {
      name = functionName(codeForm);
      const image = baseSelect.value;
      if (!image) throw new FormProblem("Choose the base image (or image build) the code runs on.");
      const handler = handlerInput.value.trim();
      if (!handler) throw new FormProblem(`Give the handler (e.g. ${HANDLER_HINTS[languageOf.get(image)] || "hello.handle"}).`);
      if (!filesInput.files || filesInput.files.length === 0) throw new FormProblem("Pick the code: a file, or a folder (tick \"pick a folder\").");
      const before = existing.get(name);
      const keep = before && before.contract === "code" ? kept(before.spec, KEPT_FROM_CODE_SPEC) : {};
      body = applyLimits(codeForm, { ...keep, image, handler, source: "" });
    } catch (error) {
      showProblem(codeProblem, error);
      return;
    }
    button.disabled = true;
    buildLog.clear();
    buildState.scrollIntoView({ block: "start", behavior: "smooth" });
    try {
      buildState.textContent = "Packing the code…";
      const packed = await packSource(filesInput.files);
      body.source = packed.source;
      buildState.textContent = `Sending ${packed.files.length} file(s), ${packed.gzipped} bytes gzipped…`;
      await api("PUT", `/namespaces/${enc(ns)}/functions/${enc(name)}/code`, { body, signal: leaving.signal });
      const ended = await followBuild(name);
      if (!ended) return;
      if (ended.status === "READY") {
        await navigate(functionPage(name));
        return;
      }
      replace(codeProblem, h("div", { class: "error", "data-code": "faasbox.code.build", role: "alert" },
        h("span", { class: "error-message" }, `The build ended ${ended.status}: ${ended.reason || "see its log below"}`), " ",
        link(functionPage(name), "the function's page")));
    } catch (error) {
      if (leaving.signal.aborted) return;
      showProblem(codeProblem, error);
      buildState.textContent = "";
    }
    button.disabled = false;
  });

  // --- tabs -------------------------------------------------------------------------------
  const tabImage = h("button", { type: "button", role: "tab", "data-action": "show-image" }, "From an image");
  const tabCode = h("button", { type: "button", role: "tab", "data-action": "show-code" }, "From code");
  function show(tab) {
    const code = tab === "code";
    imageForm.hidden = code;
    codeForm.hidden = !code;
    tabImage.setAttribute("aria-selected", String(!code));
    tabCode.setAttribute("aria-selected", String(code));
    const url = new URL(location.href);
    if (code) url.searchParams.set("tab", "code");
    else url.searchParams.delete("tab");
    history.replaceState(null, "", url.pathname + url.search);
  }
  tabImage.addEventListener("click", () => show("image"));
  tabCode.addEventListener("click", () => show("code"));

  replace(
    main,
    h("header", { class: "page-head" },
      h("p", { class: "crumbs" }, link(`/ui/ns/${enc(ns)}`, ns), " / ", link(`/ui/ns/${enc(ns)}/functions`, "functions"), " / "),
      h("h1", {}, "Deploy a function")),
    h("div", { class: "tabs", role: "tablist" }, tabImage, tabCode),
    imageForm,
    codeForm,
  );
  // A new revision of a deployed function starts from its current settings.
  const current = existing.get(query.get("name") || "");
  let tab = query.get("tab") === "code" ? "code" : "image";
  if (current && current.spec) {
    const spec = current.spec;
    if (current.contract === "code") {
      tab = "code";
      fillLimits(codeForm, spec);
      try {
        const code = await api("GET", `/namespaces/${enc(ns)}/functions/${enc(current.name)}/code`);
        if ([...baseSelect.options].some((o) => o.value === code.image)) baseSelect.value = code.image;
        handlerInput.value = code.handler || "";
      } catch {
        handlerInput.value = spec.handler || "";
      }
    } else {
      if (!query.get("image")) imageForm.elements.image.value = spec.image || "";
      if (CONTRACTS.includes(spec.contract)) imageForm.elements.contract.value = spec.contract;
      if (spec.cmd && spec.cmd.length) imageForm.elements.cmd.value = spec.cmd.map(shellWord).join(" ");
      fillLimits(imageForm, spec);
    }
  }
  show(tab);

  return () => leaving.abort();
}
