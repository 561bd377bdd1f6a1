// The live Service Log stream: the records since the page was opened, newest first, as they arrive.

import { h, link, seg, table, when } from "../dom.js";
import { about, liveMode, recent } from "../live.js";

export async function render(container) {
  const rows = h("tbody", { id: "event-rows" });
  const row = (record) => {
    const subject = about(record);
    const target = subject.taskId && subject.jobId
      ? link(`#/jobs/${seg(subject.jobId)}/tasks/${seg(subject.taskId)}`, `${subject.jobId} / ${subject.taskId}`)
      : subject.poolId ? link(`#/pools/${seg(subject.poolId)}`, subject.poolId) : "";
    return h("tr", { dataset: { operation: record.operationName } },
      h("td", { class: "num" }, String(record.sequence ?? "")),
      h("td", {}, when(record.time)),
      h("td", {}, record.operationName),
      h("td", {}, target),
      h("td", {}, h("details", {}, h("summary", {}, "properties"), h("pre", {}, JSON.stringify(record.properties, null, 2)))),
    );
  };
  rows.replaceChildren(...recent.slice().reverse().map(row));
  const grid = table(["#", "Time", "Event", "About", "Record"], [], { class: "grid", id: "event-table" });
  grid.querySelector("tbody").replaceWith(rows);
  container.replaceChildren(
    h("h1", {}, "Events"),
    h("p", { class: "muted" }, liveMode() === "polling"
      ? "The event stream is off: start the service with --diagnostic-logs (stream, linked or a connection string)."
      : "Service Log records (the diagnostic log's events) since this page was opened, newest first."),
    grid,
  );
  return {
    onRecord: (record) => {
      rows.prepend(row(record));
      while (rows.children.length > 500) rows.lastChild.remove();
    },
  };
}
