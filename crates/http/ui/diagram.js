// A flow's diagram: the server's GRAPH (`{start, states: [{id, type, line}], edges: [{from, to,
// kind, label?}]}`, docs/UI.md) drawn into `svg#diagram`. Layered layout: a state's layer is
// its breadth-first depth from `start` (states nothing reaches go in a last layer), states in
// a layer ordered by the mean place of their parents to keep crossings few. Forward edges are
// curves downwards; edges back to an earlier (or the same) layer go round the right side.
import { h, svg, replace } from "./dom.js";

const NODE_W = 168;
const NODE_H = 44;
const GAP_X = 36;
const GAP_Y = 84;
const MARGIN = 16;
/** Space on the right for the edges that go back up. */
const LANE = 14;
const KINDS = ["transition", "condition", "default", "catch", "event", "timeout"];

/** Cuts `text` to `max` characters with an ellipsis. */
function cut(text, max) {
  const s = String(text ?? "");
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}

/** Breadth-first depth of each state from `start`; unreached states get one layer after. */
function layers(graph) {
  const ids = graph.states.map((s) => s.id);
  const known = new Set(ids);
  const out = new Map(ids.map((id) => [id, []]));
  for (const e of graph.edges) if (known.has(e.from) && known.has(e.to)) out.get(e.from).push(e.to);
  const depth = new Map();
  const start = known.has(graph.start) ? graph.start : ids[0];
  if (start !== undefined) {
    depth.set(start, 0);
    const queue = [start];
    while (queue.length) {
      const id = queue.shift();
      for (const next of out.get(id)) {
        if (!depth.has(next)) {
          depth.set(next, depth.get(id) + 1);
          queue.push(next);
        }
      }
    }
  }
  const reached = depth.size ? Math.max(...depth.values()) : -1;
  const rows = [];
  for (const id of ids) {
    const d = depth.has(id) ? depth.get(id) : reached + 1;
    (rows[d] ??= []).push(id);
  }
  return { rows: rows.filter(Boolean), depth, reached };
}

/** Orders each layer by the mean position of its states' parents in the layer above. */
function order(rows, edges) {
  const parents = new Map();
  for (const e of edges) {
    if (!parents.has(e.to)) parents.set(e.to, []);
    parents.get(e.to).push(e.from);
  }
  const position = new Map();
  rows[0].forEach((id, i) => position.set(id, i));
  for (let r = 1; r < rows.length; r++) {
    const above = new Set(rows[r - 1]);
    const weight = (id, i) => {
      const ps = (parents.get(id) ?? []).filter((p) => above.has(p));
      return ps.length ? ps.reduce((sum, p) => sum + position.get(p), 0) / ps.length : i;
    };
    const scored = rows[r].map((id, i) => [id, weight(id, i), i]);
    scored.sort((a, b) => a[1] - b[1] || a[2] - b[2]);
    rows[r] = scored.map((s) => s[0]);
    rows[r].forEach((id, i) => position.set(id, i));
  }
  return rows;
}

function marker(kind) {
  return svg(
    "marker",
    {
      id: "arrow-" + kind,
      class: "arrow kind-" + kind,
      viewBox: "0 0 10 10",
      refX: "9",
      refY: "5",
      markerWidth: "7",
      markerHeight: "7",
      orient: "auto-start-reverse",
    },
    svg("path", { d: "M0,0 L10,5 L0,10 z" }),
  );
}

/**
 * Draws `graph` into `target` (an `svg#diagram`), replacing what it held. `onselect(state)` is
 * called when a state's box is clicked (the page moves the editor to its line); `marks` maps a
 * state id to a class its box gets (the instance page: `visited`, `current`, `failed`).
 */
export function drawDiagram(target, graph, { onselect = null, marks = {} } = {}) {
  target.classList.remove("stale");
  if (!graph || !Array.isArray(graph.states) || graph.states.length === 0) {
    target.setAttribute("viewBox", "0 0 400 40");
    target.setAttribute("width", "400");
    target.setAttribute("height", "40");
    replace(target, svg("text", { x: "8", y: "24", class: "diagram-empty" }, "no diagram yet: it is drawn once the flow checks out"));
    return;
  }
  const edges = (graph.edges ?? []).filter(
    (e) => graph.states.some((s) => s.id === e.from) && graph.states.some((s) => s.id === e.to),
  );
  const { rows: unordered, depth } = layers({ ...graph, edges });
  const rows = order(unordered, edges);
  const widest = Math.max(...rows.map((r) => r.length));
  const innerW = widest * NODE_W + (widest - 1) * GAP_X;

  const place = new Map();
  rows.forEach((row, r) => {
    const rowW = row.length * NODE_W + (row.length - 1) * GAP_X;
    const x0 = MARGIN + (innerW - rowW) / 2;
    row.forEach((id, i) => place.set(id, { x: x0 + i * (NODE_W + GAP_X), y: MARGIN + r * (NODE_H + GAP_Y), row: r }));
  });

  // Edges sharing both ends are spread apart; back edges each get their own lane.
  const seen = new Map();
  let lanes = 0;
  const edgeNodes = [];
  const labelNodes = [];
  for (const e of edges) {
    const pair = e.from + "\u0000" + e.to;
    const nth = seen.get(pair) ?? 0;
    seen.set(pair, nth + 1);
    const spread = nth * 14;
    const a = place.get(e.from);
    const b = place.get(e.to);
    const kind = KINDS.includes(e.kind) ? e.kind : "transition";
    let d;
    let mid;
    if (e.from === e.to) {
      const x = a.x + NODE_W;
      const y = a.y + NODE_H / 2;
      const r = 22 + spread;
      d = `M${x},${y - 8} C${x + r},${y - 8 - r} ${x + r},${y + 8 + r} ${x},${y + 8}`;
      mid = { x: x + r * 0.75 + 4, y };
    } else if (b.row > a.row) {
      const sx = a.x + NODE_W / 2 + spread;
      const sy = a.y + NODE_H;
      const tx = b.x + NODE_W / 2 + spread;
      const ty = b.y;
      const bend = Math.max(30, (ty - sy) / 2);
      d = `M${sx},${sy} C${sx},${sy + bend} ${tx},${ty - bend} ${tx},${ty}`;
      // The curve's middle (t = 1/2 of the cubic).
      mid = { x: (sx + tx) / 2, y: (sy + ty) / 2 };
    } else if (b.row === a.row && Math.abs(b.x - a.x) <= NODE_W + GAP_X + 1) {
      // Neighbours in a layer: straight across the gap between them.
      const right = b.x > a.x;
      const y = a.y + NODE_H / 2 + (right ? -5 : 5) + spread / 2;
      const sx = right ? a.x + NODE_W : a.x;
      const tx = right ? b.x : b.x + NODE_W;
      d = `M${sx},${y} L${tx},${y}`;
      mid = { x: (sx + tx) / 2, y: y - 10 };
    } else if (b.row === a.row) {
      // Further apart in a layer: an arc below the layer.
      const sx = a.x + NODE_W / 2 + spread;
      const tx = b.x + NODE_W / 2 + spread;
      const sy = a.y + NODE_H;
      const sag = 26 + Math.abs(tx - sx) / 12;
      d = `M${sx},${sy} C${sx},${sy + sag} ${tx},${sy + sag} ${tx},${sy}`;
      mid = { x: (sx + tx) / 2, y: sy + sag * 0.75 };
    } else {
      lanes += 1;
      const laneX = MARGIN + innerW + lanes * LANE;
      const sx = a.x + NODE_W;
      const sy = a.y + NODE_H / 2 + spread / 2;
      const tx = b.x + NODE_W;
      const ty = b.y + NODE_H / 2 - spread / 2;
      d = `M${sx},${sy} C${laneX},${sy} ${laneX},${ty} ${tx},${ty}`;
      mid = { x: (sx + 3 * laneX + 3 * laneX + tx) / 8, y: (sy + ty) / 2 };
    }
    const title = `${e.from} → ${e.to} (${kind}${e.label ? ": " + e.label : ""})`;
    edgeNodes.push(
      svg(
        "g",
        { class: "edge kind-" + kind, "data-from": e.from, "data-to": e.to, "data-kind": kind },
        svg("title", {}, title),
        svg("path", { class: "edge kind-" + kind, d, "marker-end": `url(#arrow-${kind})` }),
      ),
    );
    if (e.label) {
      const text = cut(e.label, 26);
      const w = text.length * 6.4 + 8;
      labelNodes.push(
        svg(
          "g",
          { class: "edge-label kind-" + kind, "data-from": e.from, "data-to": e.to },
          svg("title", {}, title),
          svg("rect", { x: mid.x - w / 2, y: mid.y - 9, width: w, height: 16, rx: "3" }),
          svg("text", { x: mid.x, y: mid.y + 3, "text-anchor": "middle" }, text),
        ),
      );
    }
  }

  const nodes = graph.states.map((s) => {
    const p = place.get(s.id);
    const classes = ["node"];
    if (s.id === graph.start) classes.push("start");
    if (!depth.has(s.id)) classes.push("unreached");
    if (Object.hasOwn(marks, s.id)) classes.push(marks[s.id]);
    const attrs = {
      class: classes.join(" "),
      "data-state": s.id,
      "data-type": s.type ?? "",
      transform: `translate(${p.x},${p.y})`,
    };
    if (onselect) {
      attrs.tabindex = "0";
      attrs.onclick = () => onselect(s);
      attrs.onkeydown = (e) => {
        if (e.key === "Enter") onselect(s);
      };
    }
    return svg(
      "g",
      attrs,
      svg(
        "title",
        {},
        `${s.id} (${s.type ?? "?"})${s.line ? ", line " + s.line : ""}${depth.has(s.id) ? "" : ": no transition reaches it"}`,
      ),
      svg("rect", { width: NODE_W, height: NODE_H, rx: "6" }),
      svg("text", { class: "state-id", x: NODE_W / 2, y: 19, "text-anchor": "middle" }, cut(s.id, 24)),
      svg("text", { class: "state-type", x: NODE_W / 2, y: 35, "text-anchor": "middle" }, cut(s.type ?? "", 28)),
    );
  });

  const width = MARGIN * 2 + innerW + (lanes ? lanes * LANE + 10 : 0) + (edges.some((e) => e.from === e.to) ? 40 : 0);
  const height = MARGIN * 2 + rows.length * NODE_H + (rows.length - 1) * GAP_Y;
  target.setAttribute("viewBox", `0 0 ${width} ${height}`);
  target.setAttribute("width", String(width));
  target.setAttribute("height", String(height));
  replace(
    target,
    svg("defs", {}, KINDS.map(marker)),
    svg("g", { class: "edges" }, edgeNodes),
    svg("g", { class: "nodes" }, nodes),
    svg("g", { class: "labels" }, labelNodes),
  );
}

/** The legend of the edge kinds' line styles, as HTML. */
export function diagramLegend() {
  return h(
    "div",
    { class: "diagram-legend" },
    KINDS.map((kind) =>
      h(
        "span",
        { class: "legend-item" },
        svg(
          "svg",
          { width: "30", height: "10", viewBox: "0 0 30 10", "aria-hidden": "true" },
          svg("line", { class: "edge kind-" + kind, x1: "1", y1: "5", x2: "29", y2: "5" }),
        ),
        " ",
        kind,
      ),
    ),
  );
}
