// The account: its name, pools and their nodes by state, jobs by state, the latest events.

import { accountName, getJson, listAll } from "../api.js";
import { facts, h, link, seg, table, when } from "../dom.js";
import { recent } from "../live.js";

const NODE_STATES = ["idle", "running", "creating", "starting", "waitingForStartTask", "startTaskFailed", "unusable", "offline", "preempted"];

export async function render(container) {
  const [name, counts, jobs] = await Promise.all([
    accountName(),
    getJson("/nodecounts"),
    listAll("/jobs", { $select: "id,state" }),
  ]);
  const byState = {};
  for (const job of jobs) byState[job.state] = (byState[job.state] ?? 0) + 1;
  const poolRows = (counts.value ?? []).map((entry) =>
    h(
      "tr",
      {},
      h("td", {}, link(`#/pools/${seg(entry.poolId)}`, entry.poolId)),
      NODE_STATES.map((state) => h("td", { class: "num" }, (entry.dedicated?.[state] ?? 0) + (entry.lowPriority?.[state] ?? 0))),
      h("td", { class: "num" }, (entry.dedicated?.total ?? 0) + (entry.lowPriority?.total ?? 0)),
    ),
  );
  const events = h("ul", { class: "event-list", id: "overview-events" });
  const refreshEvents = () =>
    events.replaceChildren(
      ...recent.slice(-10).reverse().map((r) => h("li", {}, `${when(r.time)} ${r.operationName} ${r.properties?.id ?? ""}`)),
    );
  refreshEvents();
  container.replaceChildren(
    h("h1", {}, `Account ${name}`),
    facts([
      ["Pools", String((counts.value ?? []).length)],
      ["Jobs", Object.entries(byState).map(([state, n]) => `${n} ${state}`).join(", ") || "none"],
    ]),
    h("h2", {}, "Nodes by pool and state"),
    table(["Pool", ...NODE_STATES, "total"], poolRows, { class: "grid" }),
    h("h2", {}, "Latest events"),
    events,
  );
  return { onRecord: refreshEvents };
}
