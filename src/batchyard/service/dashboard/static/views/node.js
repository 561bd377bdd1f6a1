// One compute node: state, its recent tasks, start task, errors, and its files (each opens in a viewer).

import { apiUrl, getJson, listPage } from "../api.js";
import { errorBox, facts, h, link, seg, stateBadge, table, when } from "../dom.js";
import { about } from "../live.js";
import { tail } from "./output.js";

export async function render(container, poolId, nodeId) {
  const path = `/pools/${seg(poolId)}/nodes/${seg(nodeId)}`;
  const summary = h("div", { id: "node-summary" });
  const recent = h("div", { id: "node-recent-tasks" });
  const draw = async () => {
    const node = await getJson(path);
    summary.replaceChildren(
      facts([
        ["State", h("span", { id: "node-state" }, stateBadge(node.state))],
        ["Scheduling", node.schedulingState],
        ["Dedicated", node.isDedicated === false ? "no (Spot/low-priority)" : "yes"],
        ["IP address", node.ipAddress],
        ["Allocated", when(node.allocationTime)],
        ["Running tasks", `${node.runningTasksCount ?? 0} (${node.runningTaskSlotsCount ?? 0} slots)`],
        ["Tasks run / succeeded / failed", `${node.totalTasksRun ?? 0} / ${node.totalTasksSucceeded ?? 0} / ${node.totalTasksRun - node.totalTasksSucceeded || 0}`],
        ["Start task", node.startTaskInfo ? `${node.startTaskInfo.state}, exit code ${node.startTaskInfo.exitCode ?? "–"}` : null],
        ["Errors", (node.errors ?? []).map((e) => `${e.code}: ${e.message}`).join("; ") || null],
      ]),
    );
    recent.replaceChildren(
      table(["Task", "Job", "State", "Exit code"], (node.recentTasks ?? []).map((t) =>
        h("tr", {},
          h("td", {}, link(`#/jobs/${seg(t.jobId)}/tasks/${seg(t.taskId)}`, t.taskId)),
          h("td", {}, link(`#/jobs/${seg(t.jobId)}`, t.jobId)),
          h("td", {}, stateBadge(t.taskState)),
          h("td", { class: "num" }, t.executionInfo?.exitCode ?? "–")),
      ), { class: "grid" }),
    );
  };
  await draw();

  const files = h("tbody");
  const viewer = h("div", { id: "node-file-viewer" });
  let current = null;
  const showFile = (name) => {
    current?.stop();
    current = tail(`${path}/files/${name.split("/").map(seg).join("/")}`, () => false, "node-file");
    viewer.replaceChildren(h("h3", {}, name), current.element);
  };
  try {
    const page = await listPage(apiUrl(`${path}/files`, { recursive: "true", maxresults: 500 }));
    files.replaceChildren(...page.items.map((file) =>
      h("tr", {},
        h("td", {}, file.isDirectory ? file.name + "/" : h("button", { type: "button", class: "linkish", onclick: () => showFile(file.name) }, file.name)),
        h("td", { class: "num" }, file.isDirectory ? "" : file.properties?.contentLength ?? ""),
        h("td", {}, when(file.properties?.lastModified)),
      ),
    ));
  } catch (error) {
    files.replaceChildren(h("tr", {}, h("td", { colspan: 3 }, errorBox(error))));
  }
  const fileTable = table(["File", "Bytes", "Modified"], [], { class: "grid", id: "node-files" });
  fileTable.querySelector("tbody").replaceWith(files);

  container.replaceChildren(
    h("h1", {}, `Node ${nodeId}`),
    h("p", {}, "Pool ", link(`#/pools/${seg(poolId)}`, poolId)),
    summary,
    h("h2", {}, "Recent tasks"),
    recent,
    h("h2", {}, "Files"),
    fileTable,
    viewer,
  );
  return {
    onRecord: (record) => {
      if (about(record).nodeId === nodeId) draw().catch(() => {});
    },
    onTick: () => draw().catch(() => {}),
  };
}
