// A flow's diagram: the server's GRAPH (`{start, states: [{id, type, line}], edges: [{from, to,
// kind, label?}]}`, docs/UI.md) drawn into `svg#diagram`. Layered layout: a state's layer is
// its depth from `start` (breadth-first where the flow is a tree, the longest way where paths
// join; states nothing reaches go in a last layer), states in a layer ordered by the mean
// place of their parents to keep crossings few. Forward edges are
// curves downwards; edges back to an earlier (or the same) layer go round the right side.
import { h, svg, replace } from "./dom.js";

const NODE_W = 150;
const NODE_H = 44;
const GAP_X = 28;
/** The width a long edge takes in each layer it passes. */
const VIRTUAL_W = 8;
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

/** The point at `t` (0..1) of the cubic curve from `p0` to `p3` with controls `p1`, `p2`. */
function cubicAt(t, p0, p1, p2, p3) {
  const u = 1 - t;
  const at = (k) => u * u * u * p0[k] + 3 * u * u * t * p1[k] + 3 * u * t * t * p2[k] + t * t * t * p3[k];
  return { x: at(0), y: at(1) };
}

/**
 * The layer of each state: its depth from `start` (breadth-first depth where the flow is a
 * tree; where paths join, the longest way from `start`, so that every forward edge points
 * down). Edges back to a state on the way from `start` (loops, retries) are left out of the
 * depth. States nothing reaches get one layer after the others.
 */
function layers(graph) {
  const ids = graph.states.map((s) => s.id);
  const known = new Set(ids);
  const out = new Map(ids.map((id) => [id, []]));
  for (const e of graph.edges) if (known.has(e.from) && known.has(e.to)) out.get(e.from).push(e.to);
  const start = known.has(graph.start) ? graph.start : ids[0];
  const depth = new Map();
  if (start !== undefined) {
    // Depth-first from start: an edge to a state still on the path is a back edge.
    const mark = new Map();
    const back = new Set();
    const stack = [[start, 0]];
    mark.set(start, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const next = out.get(top[0])[top[1]++];
      if (next === undefined) {
        mark.set(top[0], 2);
        stack.pop();
      } else if (mark.get(next) === 1) {
        back.add(top[0] + "\u0000" + next);
      } else if (!mark.has(next)) {
        mark.set(next, 1);
        stack.push([next, 0]);
      }
    }
    // Longest path over the forward edges, in topological order (Kahn).
    const incoming = new Map([...mark.keys()].map((id) => [id, 0]));
    const forward = (from) => out.get(from).filter((to) => !back.has(from + "\u0000" + to));
    for (const id of mark.keys()) for (const to of forward(id)) incoming.set(to, incoming.get(to) + 1);
    depth.set(start, 0);
    const queue = [start];
    while (queue.length) {
      const id = queue.shift();
      for (const to of forward(id)) {
        depth.set(to, Math.max(depth.get(to) ?? 0, depth.get(id) + 1));
        incoming.set(to, incoming.get(to) - 1);
        if (incoming.get(to) === 0) queue.push(to);
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

/**
 * Orders each layer to keep crossings few: sweeps down, up and down again, each time sorting a
 * layer by the mean place of its neighbours in the layer just done (`links` join adjacent
 * layers only).
 */
function order(rows, links) {
  const parents = new Map();
  const children = new Map();
  const add = (map, key, value) => {
    if (!map.has(key)) map.set(key, []);
    map.get(key).push(value);
  };
  for (const [from, to] of links) {
    add(parents, to, from);
    add(children, from, to);
  }
  const position = new Map();
  rows.forEach((row) => row.forEach((id, i) => position.set(id, i)));
  const sortBy = (r, neighbours) => {
    const weight = (id, i) => {
      const ns = neighbours.get(id) ?? [];
      return ns.length ? ns.reduce((sum, n) => sum + position.get(n), 0) / ns.length : i;
    };
    const scored = rows[r].map((id, i) => [id, weight(id, i), i]);
    scored.sort((a, b) => a[1] - b[1] || a[2] - b[2]);
    rows[r] = scored.map((x) => x[0]);
    rows[r].forEach((id, i) => position.set(id, i));
  };
  for (let r = 1; r < rows.length; r++) sortBy(r, parents);
  for (let r = rows.length - 2; r >= 0; r--) sortBy(r, children);
  for (let r = 1; r < rows.length; r++) sortBy(r, parents);
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
    target.style.minWidth = "";
    replace(target, svg("text", { x: "8", y: "24", class: "diagram-empty" }, "no diagram yet: it is drawn once the flow checks out"));
    return;
  }
  const edges = (graph.edges ?? []).filter(
    (e) => graph.states.some((s) => s.id === e.from) && graph.states.some((s) => s.id === e.to),
  );
  const { rows, depth } = layers({ ...graph, edges });
  const rowOf = new Map();
  rows.forEach((row, r) => row.forEach((id) => rowOf.set(id, r)));
  // An edge down more than one layer goes through a point in each layer between (a narrow
  // stand-in placed like a state), so that it bends round the states instead of crossing them.
  const virtual = new Set();
  const chains = new Map();
  const links = [];
  edges.forEach((e, k) => {
    const from = rowOf.get(e.from);
    const to = rowOf.get(e.to);
    if (to - from > 1) {
      const chain = [];
      let previous = e.from;
      for (let r = from + 1; r < to; r++) {
        const v = `\u0000${k}:${r}`;
        virtual.add(v);
        rows[r].push(v);
        chain.push(v);
        links.push([previous, v]);
        previous = v;
      }
      links.push([previous, e.to]);
      chains.set(e, chain);
    } else if (to === from + 1) {
      links.push([e.from, e.to]);
    }
  });
  order(rows, links);
  const widthOf = (id) => (virtual.has(id) ? VIRTUAL_W : NODE_W);
  const rowWidth = (row) => row.reduce((sum, id, i) => sum + widthOf(id) + (i ? GAP_X : 0), 0);
  const innerW = Math.max(...rows.map(rowWidth));

  const place = new Map();
  rows.forEach((row, r) => {
    let x = MARGIN + (innerW - rowWidth(row)) / 2;
    for (const id of row) {
      place.set(id, { x, y: MARGIN + r * (NODE_H + GAP_Y), row: r });
      x += widthOf(id) + GAP_X;
    }
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
      // From the bottom of `a` through each stand-in (down its height) to the top of `b`.
      const stops = (chains.get(e) ?? []).map((v) => place.get(v));
      let x = a.x + NODE_W / 2 + spread;
      let y = a.y + NODE_H;
      const parts = [`M${x},${y}`];
      const hops = [...stops.map((v) => [v.x + VIRTUAL_W / 2, v.y, v.y + NODE_H]), [b.x + NODE_W / 2 + spread, b.y, b.y]];
      hops.forEach(([tx, top, bottom], n) => {
        const bend = GAP_Y / 2;
        parts.push(`C${x},${y + bend} ${tx},${top - bend} ${tx},${top}`);
        // Past the middle of the first hop, where edges fanning out of one state are apart.
        if (n === 0) mid = cubicAt(0.62, [x, y], [x, y + bend], [tx, top - bend], [tx, top]);
        if (bottom > top) parts.push(`L${tx},${bottom}`);
        x = tx;
        y = bottom;
      });
      d = parts.join(" ");
    } else if (b.row === a.row && Math.abs(rows[a.row].indexOf(e.from) - rows[a.row].indexOf(e.to)) === 1) {
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
  // Shrinks to fit its box, down to 60 % (then the box scrolls).
  target.style.minWidth = Math.round(width * 0.6) + "px";
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
