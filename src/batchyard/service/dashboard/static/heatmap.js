// The pool's node heat map: one tile per node, coloured by node state with Batch Explorer's palette.
// Tiles are links to the node's page (keyboard: Tab through them, Enter opens one).

import { h, seg } from "./dom.js";

export const NODE_STATE_COLORS = {
  idle: "#edeef2",
  running: "#388e3c",
  waitingforstarttask: "#be93d9",
  offline: "#305796",
  preempted: "#606060",
  creating: "#dbf659",
  starting: "#fffe5c",
  rebooting: "#ffcc5c",
  reimaging: "#ffc95c",
  leavingpool: "#ff755c",
  starttaskfailed: "#aa3939",
  unusable: "#f95619",
  unknown: "#f98819",
  upgradingos: "#ffcc5c",
  deallocated: "#606060",
  deallocating: "#ff755c",
};
const DARK_TILES = new Set(["running", "offline", "preempted", "starttaskfailed", "deallocated"]);

export function colorOf(state) {
  return NODE_STATE_COLORS[String(state).toLowerCase()] ?? "#9e9e9e";
}

export function heatmap(poolId, nodes) {
  const tiles = nodes.map((node) => {
    const state = node.state ?? "unknown";
    const label = `${node.id}: ${state}${node.isDedicated === false ? " (Spot/low-priority)" : ""}` +
      (node.runningTasksCount ? `, ${node.runningTasksCount} running task(s)` : "");
    return h(
      "a",
      {
        class: `tile${DARK_TILES.has(state.toLowerCase()) ? " dark" : ""}${node.isDedicated === false ? " spot" : ""}`,
        href: `#/pools/${seg(poolId)}/nodes/${seg(node.id)}`,
        style: { backgroundColor: colorOf(state) },
        title: label,
        "aria-label": label,
        dataset: { node: node.id, state },
      },
      h("span", { class: "tile-text" }, node.runningTasksCount ? String(node.runningTasksCount) : ""),
    );
  });
  const counts = {};
  for (const node of nodes) counts[node.state] = (counts[node.state] ?? 0) + 1;
  const legend = h(
    "ul",
    { class: "legend", "aria-label": "Nodes by state" },
    Object.entries(counts).map(([state, count]) =>
      h("li", {}, h("span", { class: "swatch", style: { backgroundColor: colorOf(state) } }), `${state}: ${count}`),
    ),
  );
  return h(
    "div",
    { class: "heatmap-box" },
    h("div", { class: "heatmap", role: "list", "aria-label": "Nodes" }, tiles.map((tile) => h("div", { role: "listitem" }, tile))),
    nodes.length ? legend : h("p", { class: "muted" }, "No nodes."),
  );
}
