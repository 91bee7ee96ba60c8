// The flow page's YAML editor: a plain `<textarea id=flow-source>` with a line-number gutter
// (`#gutter`, scrolled with the text), problem lines marked `.problem-line` (warnings
// `.warning-line`), and the problem list `ul#problems` (warnings in `ul#warnings`) whose items
// move the caret to their line and column. No library: the browser's textarea does the editing.
import { h, replace } from "./dom.js";

/** Spaces a Tab key inserts (YAML forbids tabs for indentation). */
const INDENT = "  ";

/**
 * Makes an editor holding `value`. `oninput(text)` is called after each change by the user;
 * `onsave()` on Ctrl+S / Cmd+S. Returns `{element, problems, warnings, textarea, value(),
 * setValue(text), setProblems(problems, warnings), focusAt(line, column)}`: `element` is the
 * gutter and text, `problems`/`warnings` the lists, to be placed by the page.
 */
export function yamlEditor({ value = "", oninput = () => {}, onsave = null } = {}) {
  const gutter = h("div", { id: "gutter", "aria-hidden": "true" });
  const textarea = h("textarea", {
    id: "flow-source",
    name: "source",
    spellcheck: "false",
    autocomplete: "off",
    autocapitalize: "off",
    wrap: "off",
    "aria-label": "flow YAML",
  });
  textarea.value = value;
  const problems = h("ul", { id: "problems", class: "problems" });
  const warnings = h("ul", { id: "warnings", class: "problems warnings" });
  const element = h("div", { class: "yaml-editor" }, gutter, textarea);

  // line number → messages, for the gutter's marks and their tooltips.
  let marks = new Map();
  let lineCount = 0;

  function drawGutter() {
    const count = textarea.value.split("\n").length;
    if (count !== lineCount) {
      const rows = [];
      for (let n = 1; n <= count; n++) rows.push(h("div", { class: "gutter-line", "data-line": n }, n));
      replace(gutter, ...rows);
      lineCount = count;
    }
    for (const row of gutter.children) {
      const mark = marks.get(Number(row.dataset.line));
      row.classList.toggle("problem-line", mark?.kind === "problem");
      row.classList.toggle("warning-line", mark?.kind === "warning");
      if (mark) row.title = mark.messages.join("\n");
      else row.removeAttribute("title");
    }
    syncScroll();
  }

  function syncScroll() {
    gutter.scrollTop = textarea.scrollTop;
  }

  /** The offset in the text of 1-based `line` and `column` (clamped to the text). */
  function offsetOf(line, column) {
    const lines = textarea.value.split("\n");
    const l = Math.min(Math.max(1, line || 1), lines.length);
    let offset = 0;
    for (let i = 0; i < l - 1; i++) offset += lines[i].length + 1;
    return offset + Math.min(Math.max(0, (column || 1) - 1), lines[l - 1].length);
  }

  function focusAt(line, column) {
    const at = offsetOf(line, column);
    textarea.focus();
    textarea.setSelectionRange(at, at);
    const lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 18;
    const top = (Math.max(1, line || 1) - 1) * lineHeight;
    if (top < textarea.scrollTop || top > textarea.scrollTop + textarea.clientHeight - lineHeight) {
      textarea.scrollTop = Math.max(0, top - textarea.clientHeight / 3);
    }
    syncScroll();
  }

  function item(p, kind) {
    const line = Math.max(1, p.line || 1);
    const column = Math.max(1, p.column || 1);
    return h(
      "li",
      {
        class: kind,
        "data-line": line,
        "data-column": column,
        tabindex: "0",
        title: "go to line " + line + ", column " + column,
        onclick: () => focusAt(line, column),
        onkeydown: (e) => {
          if (e.key === "Enter") focusAt(line, column);
        },
      },
      h("span", { class: "where" }, line + ":" + column),
      " ",
      p.message,
    );
  }

  /** Shows `problems` and `warnings` (each `[{line, column, message}]`); empty lists clear. */
  function setProblems(found = [], warned = []) {
    marks = new Map();
    for (const [list, kind] of [[warned, "warning"], [found, "problem"]]) {
      for (const p of list) {
        const line = Math.max(1, p.line || 1);
        const mark = marks.get(line);
        if (!mark || (mark.kind === "warning" && kind === "problem")) {
          marks.set(line, { kind, messages: [...(mark?.messages ?? []), p.message] });
        } else {
          mark.messages.push(p.message);
        }
      }
    }
    replace(problems, ...found.map((p) => item(p, "problem")));
    replace(warnings, ...warned.map((p) => item(p, "warning")));
    drawGutter();
  }

  textarea.addEventListener("scroll", syncScroll);
  // The text can be resized (taller): the gutter follows.
  new ResizeObserver(() => {
    gutter.style.height = textarea.offsetHeight + "px";
    syncScroll();
  }).observe(textarea);
  textarea.addEventListener("input", () => {
    drawGutter();
    oninput(textarea.value);
  });
  textarea.addEventListener("keydown", (e) => {
    if (e.key === "Tab" && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey) {
      // Keep focus in the editor and indent with spaces; execCommand keeps the undo history.
      e.preventDefault();
      if (!document.execCommand("insertText", false, INDENT)) {
        textarea.setRangeText(INDENT, textarea.selectionStart, textarea.selectionEnd, "end");
        textarea.dispatchEvent(new Event("input"));
      }
    } else if (e.key === "Enter" && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey && !e.isComposing) {
      // A new line keeps the indentation of the one it breaks (one step more after a `key:`
      // or a `- ` item's start), as YAML wants.
      const text = textarea.value;
      const at = textarea.selectionStart;
      const line = text.slice(text.lastIndexOf("\n", at - 1) + 1, at);
      let indent = /^[ ]*(- )?/.exec(line)[0].replace("-", " ");
      if (/:\s*$/.test(line)) indent += INDENT;
      e.preventDefault();
      if (!document.execCommand("insertText", false, "\n" + indent)) {
        textarea.setRangeText("\n" + indent, at, textarea.selectionEnd, "end");
        textarea.dispatchEvent(new Event("input"));
      }
    } else if (onsave && e.key === "s" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      onsave();
    }
  });

  drawGutter();
  return {
    element,
    problems,
    warnings,
    textarea,
    value: () => textarea.value,
    setValue(text) {
      textarea.value = text;
      drawGutter();
    },
    setProblems,
    focusAt,
  };
}
