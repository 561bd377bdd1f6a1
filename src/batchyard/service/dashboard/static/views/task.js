// One task: state and its history, exit code, failure information, and its stdout/stderr tailed live.

import { getJson } from "../api.js";
import { facts, h, link, seg, stateBadge, when } from "../dom.js";
import { about } from "../live.js";
import { tail } from "./output.js";

export async function render(container, jobId, taskId) {
  const path = `/jobs/${seg(jobId)}/tasks/${seg(taskId)}`;
  let task = await getJson(path);
  const summary = h("div", { id: "task-summary" });
  const history = h("ol", { class: "history", id: "task-history" });
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
    const steps = [["created", task.creationTime]];
    if (task.previousState) steps.push([task.previousState, task.previousStateTransitionTime]);
    if (info.startTime && task.previousState !== "running") steps.push(["running", info.startTime]);
    if (info.endTime) steps.push(["ended", info.endTime]);
    steps.push([task.state, task.stateTransitionTime]);
    steps.sort((a, b) => String(a[1]).localeCompare(String(b[1])));
    history.replaceChildren(...steps.map(([what, time]) => h("li", {}, h("time", { datetime: time }, when(time)), ` ${what}`)));
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
    task = await getJson(path);
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
