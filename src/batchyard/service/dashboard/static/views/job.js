// One job: properties, task counts and progress, and its tasks one server-side page at a time
// ($filter, $select, maxresults and odata.nextLink: a job of 100,000 tasks is never read whole).

import { apiUrl, getJson, listPage } from "../api.js";
import { errorBox, facts, h, link, seg, stateBadge, table, when } from "../dom.js";
import { about } from "../live.js";
import { taskProgress } from "./progress.js";

const QUICK_FILTERS = [
  ["All", ""],
  ["Active", "state eq 'active'"],
  ["Running", "state eq 'running'"],
  ["Completed", "state eq 'completed'"],
  ["Failed", "executionInfo/result eq 'failure'"],
];

export async function render(container, jobId) {
  const path = `/jobs/${seg(jobId)}`;
  const job = await getJson(path);
  const progress = h("div", { id: "job-progress" });
  const drawCounts = async () => progress.replaceChildren(taskProgress(await getJson(`${path}/taskcounts`)));
  await drawCounts();

  const filter = h("input", { id: "task-filter", size: 40, placeholder: "state eq 'running'", spellcheck: "false" });
  const pageSize = h("select", { id: "task-page-size", "aria-label": "Tasks per page" },
    [25, 100, 500].map((n) => h("option", { value: n }, `${n} per page`)));
  const rows = h("tbody");
  const pageInfo = h("p", { id: "task-page-info", role: "status" });
  const nextButton = h("button", { type: "button", id: "task-next" }, "Next page");
  const firstButton = h("button", { type: "button", id: "task-first" }, "First page");
  let pages = []; // URLs of the pages shown so far, the current one last
  let next = null;

  const show = async (url) => {
    try {
      const page = await listPage(url);
      next = page.next;
      rows.replaceChildren(...page.items.map(taskRow(jobId)));
      if (!page.items.length) rows.replaceChildren(h("tr", {}, h("td", { colspan: 5 }, "No tasks match.")));
      pageInfo.textContent = `Page ${pages.length}: ${page.items.length} task(s)${next ? ", more on the next page" : ""}.`;
      nextButton.disabled = !next;
      firstButton.disabled = pages.length <= 1;
    } catch (error) {
      rows.replaceChildren(h("tr", {}, h("td", { colspan: 5 }, errorBox(error))));
      pageInfo.textContent = "";
    }
  };
  const firstPage = () => {
    pages = [apiUrl(`${path}/tasks`, {
      $filter: filter.value.trim(),
      $select: "id,state,stateTransitionTime,executionInfo,nodeInfo",
      maxresults: pageSize.value,
    })];
    return show(pages[0]);
  };
  nextButton.addEventListener("click", () => {
    if (!next) return;
    pages.push(next);
    show(next);
  });
  firstButton.addEventListener("click", firstPage);
  pageSize.addEventListener("change", firstPage);
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter tasks" },
    h("label", { for: "task-filter" }, "OData $filter"), filter, pageSize,
    h("button", { type: "submit" }, "Apply"),
    QUICK_FILTERS.map(([label, value]) => h("button", { type: "button", class: "quick", onclick: () => { filter.value = value; firstPage(); } }, label)),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    firstPage();
  });
  await firstPage();

  const grid = table(["Task", "State", "Exit code", "Node", "Changed"], [], { class: "grid", id: "task-table" });
  grid.querySelector("tbody").replaceWith(rows);
  container.replaceChildren(
    h("h1", {}, `Job ${jobId}`),
    facts([
      ["State", stateBadge(job.state)],
      ["Pool", job.poolInfo?.poolId ? link(`#/pools/${seg(job.poolInfo.poolId)}`, job.poolInfo.poolId) : "auto pool"],
      ["Created", when(job.creationTime)],
      ["Priority", String(job.priority ?? 0)],
      ["On all tasks complete", job.onAllTasksComplete],
    ]),
    h("h2", {}, "Progress"),
    progress,
    h("h2", {}, "Tasks"),
    form,
    grid,
    h("div", { class: "buttons" }, firstButton, nextButton),
    pageInfo,
  );
  let pending = null;
  const refresh = () => {
    // Counts and the page in view, once per burst of records: not the whole job.
    pending ??= setTimeout(() => {
      pending = null;
      drawCounts().catch(() => {});
      show(pages[pages.length - 1]);
    }, 300);
  };
  return {
    onRecord: (record) => {
      if (about(record).jobId === jobId) refresh();
    },
    onTick: refresh,
  };
}

function taskRow(jobId) {
  return (task) =>
    h(
      "tr",
      { dataset: { task: task.id, state: task.state } },
      h("td", {}, link(`#/jobs/${seg(jobId)}/tasks/${seg(task.id)}`, task.id)),
      h("td", {}, stateBadge(task.state)),
      h("td", { class: "num" }, task.executionInfo?.exitCode ?? "–"),
      h("td", {}, task.nodeInfo?.nodeId ?? "–"),
      h("td", {}, when(task.stateTransitionTime)),
    );
}
