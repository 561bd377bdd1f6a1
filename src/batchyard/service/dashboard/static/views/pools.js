// Every pool: state, allocation, node counts, autoscale.

import { listAll } from "../api.js";
import { h, link, seg, stateBadge, table } from "../dom.js";

export async function render(container) {
  const body = h("tbody");
  const draw = async () => {
    const pools = await listAll("/pools");
    body.replaceChildren(
      ...pools.map((pool) =>
        h(
          "tr",
          {},
          h("td", {}, link(`#/pools/${seg(pool.id)}`, pool.id)),
          h("td", {}, pool.vmSize),
          h("td", {}, stateBadge(pool.state)),
          h("td", {}, pool.allocationState),
          h("td", { class: "num" }, `${pool.currentDedicatedNodes ?? 0} / ${pool.targetDedicatedNodes ?? 0}`),
          h("td", { class: "num" }, `${pool.currentLowPriorityNodes ?? 0} / ${pool.targetLowPriorityNodes ?? 0}`),
          h("td", {}, pool.enableAutoScale ? "on" : "off"),
        ),
      ),
    );
    if (!pools.length) body.replaceChildren(h("tr", {}, h("td", { colspan: 7 }, "No pools.")));
  };
  await draw();
  const grid = table(["Pool", "VM size", "State", "Allocation", "Dedicated (current / target)", "Spot (current / target)", "Autoscale"], [], { class: "grid" });
  grid.querySelector("tbody").replaceWith(body);
  container.replaceChildren(h("h1", {}, "Pools"), grid);
  return {
    onRecord: (record) => {
      if (record.operationName?.startsWith("Pool")) draw();
    },
    onTick: draw,
  };
}
