// Every job with its task counts and progress.

import { getJson, listAll } from "../api.js";
import { h, link, seg, stateBadge, table } from "../dom.js";
import { about } from "../live.js";
import { taskProgress } from "./progress.js";

export async function render(container) {
  const body = h("tbody");
  const progressCells = new Map();
  const drawCounts = async (jobId) => {
    const cell = progressCells.get(jobId);
    if (cell) cell.replaceChildren(taskProgress(await getJson(`/jobs/${seg(jobId)}/taskcounts`)));
  };
  const draw = async () => {
    const jobs = await listAll("/jobs", { $select: "id,state,poolInfo,creationTime" });
    progressCells.clear();
    body.replaceChildren(
      ...jobs.map((job) => {
        const cell = h("td", {});
        progressCells.set(job.id, cell);
        return h(
          "tr",
          {},
          h("td", {}, link(`#/jobs/${seg(job.id)}`, job.id)),
          h("td", {}, stateBadge(job.state)),
          h("td", {}, job.poolInfo?.poolId ?? "auto pool"),
          cell,
        );
      }),
    );
    if (!jobs.length) body.replaceChildren(h("tr", {}, h("td", { colspan: 4 }, "No jobs.")));
    await Promise.all(jobs.map((job) => drawCounts(job.id).catch(() => {})));
  };
  await draw();
  const grid = table(["Job", "State", "Pool", "Tasks"], [], { class: "grid" });
  grid.querySelector("tbody").replaceWith(body);
  container.replaceChildren(h("h1", {}, "Jobs"), grid);
  return {
    onRecord: (record) => {
      const { jobId } = about(record);
      if (jobId) drawCounts(jobId).catch(() => {});
    },
    onTick: () => draw().catch(() => {}),
  };
}
