// A job's task counts as numbers and a progress bar (completed of all).

import { h } from "../dom.js";

export function taskProgress(counts) {
  const c = counts.taskCounts ?? counts;
  const total = (c.active ?? 0) + (c.running ?? 0) + (c.completed ?? 0);
  const percent = total ? Math.round((100 * (c.completed ?? 0)) / total) : 0;
  return h(
    "div",
    { class: "progress-box" },
    h("progress", { max: 100, value: percent, "aria-label": `${percent}% of tasks completed` }),
    h(
      "span",
      { class: "counts", dataset: { active: c.active, running: c.running, completed: c.completed, failed: c.failed } },
      `${c.active ?? 0} active · ${c.running ?? 0} running · ${c.completed ?? 0} completed ` +
        `(${c.succeeded ?? 0} succeeded, ${c.failed ?? 0} failed) · ${percent}%`,
    ),
  );
}
