// logs.js: the shared live-log view (function page, instance page): a `pre#log-lines` with
// one `div` per line, appended as lines come, the oldest dropped past a cap so a long
// follow does not grow the page without bound.

import { h } from "./dom.js";

/** Lines kept at most; older ones are dropped first. */
export const MAX_LINES = 5000;

/** The time of a line as `HH:MM:SS.mmm` (local), or "" when it has none. */
function clock(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "";
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

/**
 * A live-log view: `{element, append(line), clear(), count()}`.
 *
 * `append` takes a string, or an object `{line|text, stream, ts_ms|time, run}` (the shapes of
 * the API's function, run and build log lines). `options.id` is the `pre`'s id (default
 * `log-lines`); `options.empty` the text shown while there is no line; `options.runLink`
 * `(runId) => node` makes the run id of a line a link.
 */
export function logView(options = {}) {
  const id = options.id || "log-lines";
  const max = options.max || MAX_LINES;
  const pre = h("pre", { id, class: "log-lines", role: "log" });
  const placeholder = h("div", { class: "log-empty" }, options.empty || "No lines yet.");
  const dropped = h("div", { class: "log-dropped", hidden: true });
  let droppedCount = 0;
  const element = h("div", { class: "log-view" }, dropped, pre, placeholder);

  function lineNode(line) {
    if (typeof line === "string") return h("div", { class: "log-line" }, line);
    const text = line.line ?? line.text ?? "";
    const stream = line.stream || "";
    const time = typeof line.ts_ms === "number" ? clock(line.ts_ms) : line.time ? clock(Date.parse(line.time)) : "";
    const run = line.run || line.invocation;
    return h(
      "div",
      { class: "log-line" + (stream ? " log-" + stream : ""), "data-stream": stream || null, "data-run": run || null },
      time ? h("span", { class: "log-time" }, time, " ") : null,
      run && options.runLink ? h("span", { class: "log-run" }, options.runLink(run), " ") : null,
      text,
    );
  }

  // Follow the end only while the reader is there (scrolling up to read older lines stops it;
  // scrolling back down starts it again). Checked on scroll, not per line: no layout per line.
  let stick = true;
  let scrollPending = false;
  let ownScroll = false;
  pre.addEventListener("scroll", () => {
    if (ownScroll) {
      ownScroll = false;
      return;
    }
    stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  });
  function scrollToEnd() {
    if (scrollPending) return;
    scrollPending = true;
    requestAnimationFrame(() => {
      scrollPending = false;
      if (!stick) return;
      const end = pre.scrollHeight - pre.clientHeight;
      if (Math.abs(pre.scrollTop - end) > 1) {
        ownScroll = true;
        pre.scrollTop = end;
      }
    });
  }

  function append(line) {
    placeholder.hidden = true;
    pre.appendChild(lineNode(line));
    while (pre.childElementCount > max) {
      pre.removeChild(pre.firstElementChild);
      droppedCount += 1;
    }
    if (droppedCount > 0) {
      dropped.hidden = false;
      dropped.textContent = `${droppedCount} older line${droppedCount === 1 ? "" : "s"} dropped (at most ${max} are kept here).`;
    }
    if (stick) scrollToEnd();
  }

  function clear() {
    while (pre.firstChild) pre.removeChild(pre.firstChild);
    placeholder.hidden = false;
    droppedCount = 0;
    dropped.hidden = true;
  }

  function count() {
    return pre.childElementCount;
  }

  return { element, append, clear, count };
}
