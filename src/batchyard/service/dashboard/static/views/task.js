// One task: state and its history, exit code, failure information, and its stdout/stderr tailed live.

import { getJson } from "../api.js";
import { facts, h, link, seg, stateBadge, table, when } from "../dom.js";
import { about } from "../live.js";
import { tail } from "./output.js";

export async function render(container, jobId, taskId) {
  const path = `/jobs/${seg(jobId)}/tasks/${seg(taskId)}`;
  const historyPath = `/_batchyard/jobs/${seg(jobId)}/tasks/${seg(taskId)}/history`;
  let [task, transitions] = await Promise.all([getJson(path), getJson(historyPath)]);
  const summary = h("div", { id: "task-summary" });
  const history = h("div", { id: "task-history" });
  const draw = () => {
    const info = task.executionInfo ?? {};
    const failure = info.failureInfo;
    summary.replaceChildren(
      facts([
        ["State", h("span", { id: "task-state" }, stateBadge(task.state))],
        ["Command line", h("code", {}, task.commandLine)],
        ["Exit code", h("span", { id: "task-exit-code" }, info.exitCode ?? "–")],
        ["Result", info.result],
        ["Failure", failure ? h("span", { class: "error", id: "task-failure" }, `${failure.category} ${failure.code}: ${failure.message}`,
          (failure.details ?? []).map((d) => h("span", { class: "detail" }, ` ${d.name}=${d.value}`))) : null],
        ["Node", task.nodeInfo ? link(`#/pools/${seg(task.nodeInfo.poolId)}/nodes/${seg(task.nodeInfo.nodeId)}`, `${task.nodeInfo.poolId} / ${task.nodeInfo.nodeId}`) : null],
        ["Retries / requeues", `${info.retryCount ?? 0} / ${info.requeueCount ?? 0}`],
      ]),
    );
    history.replaceChildren(historyTable(transitions));
  };
  draw();

  const running = () => task.state !== "completed";
  const viewer = h("div", { id: "task-output" });
  const tabs = ["stdout.txt", "stderr.txt"].map((name) =>
    h("button", { type: "button", class: "tab", "aria-pressed": "false", dataset: { file: name }, onclick: () => open(name) }, name),
  );
  let current = null;
  const open = (name) => {
    current?.stop();
    for (const tab of tabs) tab.setAttribute("aria-pressed", String(tab.dataset.file === name));
    current = tail(`${path}/files/${name}`, running, name === "stdout.txt" ? "task-stdout" : "task-stderr");
    viewer.replaceChildren(current.element);
  };
  open("stdout.txt");

  container.replaceChildren(
    h("h1", {}, `Task ${taskId}`),
    h("p", {}, "Job ", link(`#/jobs/${seg(jobId)}`, jobId)),
    summary,
    h("h2", {}, "State history"),
    history,
    h("h2", {}, "Output"),
    h("div", { class: "buttons", role: "group", "aria-label": "Output file" }, tabs),
    viewer,
  );
  const refresh = async () => {
    const wasRunning = running();
    [task, transitions] = await Promise.all([getJson(path), getJson(historyPath)]);
    draw();
    if (wasRunning && !running()) current?.poke(); // the last bytes written before it ended
  };
  return {
    onRecord: (record) => {
      const subject = about(record);
      if (subject.jobId === jobId && subject.taskId === taskId) refresh().catch(() => {});
    },
    onTick: () => {
      if (running()) refresh().catch(() => {});
    },
  };
}

// The service's record of the task's transitions (GET /_batchyard/.../history): its creation, then each move
// with the retry and requeue counts after it; a move back to active says why (a retry, a requeue, a reactivation).
function historyTable(history) {
  const rows = [h("tr", { dataset: { state: "active" } }, cells(history.creationTime, "active", 0, 0, "created"))];
  if (history.truncated) rows.push(h("tr", { class: "muted" }, h("td", { colspan: "5" }, "… earlier transitions not kept")));
  let before = { state: "active", retryCount: 0, requeueCount: 0 };
  for (const step of history.transitions) {
    rows.push(h("tr", { dataset: { state: step.state } }, cells(step.time, step.state, step.retryCount, step.requeueCount, why(before, step))));
    before = step;
  }
  return table(["Time", "State", "Retries", "Requeues", ""], rows, { class: "grid", id: "task-history-table" });
}

function cells(time, state, retries, requeues, note) {
  return [h("td", {}, h("time", { datetime: time }, when(time))), h("td", {}, stateBadge(state)), h("td", {}, retries), h("td", {}, requeues), h("td", {}, note ?? "")];
}

function why(before, step) {
  if (step.state !== "active") return "";
  if (step.retryCount > before.retryCount) return "retry";
  if (step.requeueCount > before.requeueCount) return "requeued";
  if (before.state === "completed") return "reactivated";
  return "";
}
