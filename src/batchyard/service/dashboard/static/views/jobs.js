// Every job with its task counts and progress.

import { getJson, listAll } from "../api.js";
import { h, link, seg, stateBadge, table } from "../dom.js";
import { about, liveMode } from "../live.js";
import { taskProgress } from "./progress.js";

export async function render(container) {
  const body = h("tbody");
  const progressCells = new Map();
  const waiting = new Set();
  const drawCounts = async (jobId) => {
    const cell = progressCells.get(jobId);
    if (cell) cell.replaceChildren(taskProgress(await getJson(`/jobs/${seg(jobId)}/taskcounts`)));
  };
  // Counts are fetched for a job when its row appears and when a record is about it; without the event
  // stream, for every job at each refresh.
  const draw = async () => {
    const jobs = await listAll("/jobs", { $select: "id,state,poolInfo,creationTime" });
    const known = new Map(progressCells);
    progressCells.clear();
    body.replaceChildren(
      ...jobs.map((job) => {
        const cell = known.get(job.id) ?? h("td", {});
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
    const stale = liveMode() === "events" ? jobs.filter((job) => !known.has(job.id)) : jobs;
    await Promise.all(stale.map((job) => drawCounts(job.id).catch(() => {})));
  };
  await draw();
  const grid = table(["Job", "State", "Pool", "Tasks"], [], { class: "grid" });
  grid.querySelector("tbody").replaceWith(body);
  container.replaceChildren(h("h1", {}, "Jobs"), grid);
  return {
    onRecord: (record) => {
      // Once per burst of a job's records (its tasks ending together), not once per record.
      const { jobId } = about(record);
      if (!jobId || waiting.has(jobId)) return;
      waiting.add(jobId);
      setTimeout(() => {
        waiting.delete(jobId);
        drawCounts(jobId).catch(() => {});
      }, 300);
    },
    onTick: () => draw().catch(() => {}),
  };
}
