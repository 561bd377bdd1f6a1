// One pool: its properties, the node heat map, resize, and autoscale (formula, evaluation with every
// variable, enable/disable).

import { call, apiUrl, getJson, listAll, post } from "../api.js";
import { errorBox, facts, h, seg, stateBadge, table, when } from "../dom.js";
import { heatmap } from "../heatmap.js";
import { about } from "../live.js";

export async function render(container, poolId) {
  const path = `/pools/${seg(poolId)}`;
  const summary = h("div", { id: "pool-summary" });
  const map = h("section", { id: "heatmap", "aria-labelledby": "heatmap-title" });
  const drawPool = async () => {
    const pool = await getJson(path);
    summary.replaceChildren(
      facts([
        ["State", stateBadge(pool.state)],
        ["Allocation", `${pool.allocationState} (since ${when(pool.allocationStateTransitionTime)})`],
        ["VM size", pool.vmSize],
        ["Dedicated nodes", `${pool.currentDedicatedNodes ?? 0} of ${pool.targetDedicatedNodes ?? 0}`],
        ["Spot/low-priority nodes", `${pool.currentLowPriorityNodes ?? 0} of ${pool.targetLowPriorityNodes ?? 0}`],
        ["Task slots per node", String(pool.taskSlotsPerNode ?? 1)],
        ["Autoscale", pool.enableAutoScale ? `on, every ${pool.autoScaleEvaluationInterval}` : "off"],
        ["Last autoscale run", pool.autoScaleRun ? `${when(pool.autoScaleRun.timestamp)}: ${pool.autoScaleRun.results ?? pool.autoScaleRun.error?.message ?? ""}` : null],
        ["Resize errors", (pool.resizeErrors ?? []).map((e) => `${e.code}: ${e.message}`).join("; ") || null],
      ]),
    );
    return pool;
  };
  const drawNodes = async () => {
    const nodes = await listAll(`${path}/nodes`, { $select: "id,state,isDedicated,runningTasksCount,runningTaskSlotsCount" });
    map.replaceChildren(h("h2", { id: "heatmap-title" }, `Nodes (${nodes.length})`), heatmap(poolId, nodes));
  };
  const pool = await drawPool();
  await drawNodes();
  container.replaceChildren(
    h("h1", {}, `Pool ${poolId}`),
    summary,
    map,
    resizeForm(path, pool, drawPool),
    autoscaleForm(path, pool, drawPool),
  );
  let pending = null;
  const refresh = () => {
    // Records come in bursts (a resize, tasks ending together): one refresh per burst.
    pending ??= setTimeout(() => {
      pending = null;
      drawPool().catch(() => {});
      drawNodes().catch(() => {});
    }, 250);
  };
  return {
    onRecord: (record) => {
      if (about(record).poolId === poolId) refresh();
    },
    onTick: refresh,
  };
}

function resizeForm(path, pool, redraw) {
  const dedicated = h("input", { id: "resize-dedicated", type: "number", min: 0, value: pool.targetDedicatedNodes ?? 0 });
  const spot = h("input", { id: "resize-spot", type: "number", min: 0, value: pool.targetLowPriorityNodes ?? 0 });
  const status = h("p", { role: "status", id: "resize-status" });
  const form = h(
    "form",
    { class: "panel", "aria-labelledby": "resize-title" },
    h("h2", { id: "resize-title" }, "Resize"),
    h("label", { for: "resize-dedicated" }, "Target dedicated nodes"),
    dedicated,
    h("label", { for: "resize-spot" }, "Target Spot/low-priority nodes"),
    spot,
    h("div", { class: "buttons" },
      h("button", { type: "submit" }, "Resize"),
      h("button", { type: "button", onclick: () => act(status, () => post(`${path}/stopresize`), "Resize stopped.", redraw) }, "Stop resize"),
    ),
    status,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(status, () => post(`${path}/resize`, {
      targetDedicatedNodes: Number(dedicated.value),
      targetLowPriorityNodes: Number(spot.value),
    }), "Resize started.", redraw);
  });
  return form;
}

function autoscaleForm(path, pool, redraw) {
  const formula = h("textarea", { id: "autoscale-formula", rows: 6, spellcheck: "false" },
    pool.autoScaleFormula ?? "$TargetDedicatedNodes = min(2, $PendingTasks.GetSample(1));");
  const interval = h("input", { id: "autoscale-interval", value: pool.autoScaleEvaluationInterval ?? "PT5M", size: 10 });
  const status = h("p", { role: "status" });
  const result = h("div", { id: "autoscale-result" });
  const evaluate = async () => {
    status.textContent = "Evaluating…";
    try {
      const response = await call(apiUrl(`/_batchyard${path}/evaluateautoscale`), {
        method: "POST",
        body: { autoScaleFormula: formula.value },
      });
      const run = await response.json();
      status.textContent = run.error ? `The formula has an error: ${run.error.code}: ${run.error.message}` : "Evaluated (nothing changed).";
      result.replaceChildren(
        h("h3", {}, "Results"),
        h("pre", { class: "results" }, (run.results ?? "").split(";").join("\n")),
        h("h3", {}, "Variables"),
        table(["Variable", "Type", "Value"], (run.variables ?? []).map((v) =>
          h("tr", {}, h("td", {}, v.name), h("td", {}, v.type), h("td", {}, shown(v.value))),
        ), { class: "grid", id: "autoscale-variables" }),
        h("h3", {}, "Statements"),
        table(["Line", "Statement", "Value"], (run.statements ?? []).map((step) =>
          h("tr", {}, h("td", { class: "num" }, step.line), h("td", {}, h("code", {}, step.text)), h("td", {}, shown(step.value))),
        ), { class: "grid", id: "autoscale-statements" }),
      );
    } catch (error) {
      status.textContent = "";
      result.replaceChildren(errorBox(error));
    }
  };
  const form = h(
    "form",
    { class: "panel", "aria-labelledby": "autoscale-title" },
    h("h2", { id: "autoscale-title" }, "Autoscale"),
    h("label", { for: "autoscale-formula" }, "Formula"),
    formula,
    h("label", { for: "autoscale-interval" }, "Evaluation interval (ISO 8601)"),
    interval,
    h("div", { class: "buttons" },
      h("button", { type: "button", id: "autoscale-evaluate", onclick: evaluate }, "Evaluate"),
      h("button", { type: "submit" }, "Enable autoscale"),
      h("button", { type: "button", onclick: () => act(status, () => post(`${path}/disableautoscale`), "Autoscale disabled.", redraw) }, "Disable autoscale"),
    ),
    status,
    result,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(status, () => post(`${path}/enableautoscale`, {
      autoScaleFormula: formula.value,
      autoScaleEvaluationInterval: interval.value,
    }), "Autoscale enabled.", redraw);
  });
  return form;
}

async function act(status, action, done, redraw) {
  status.textContent = "Working…";
  status.className = "";
  try {
    await action();
    status.textContent = done;
    await redraw();
  } catch (error) {
    status.textContent = error.message;
    status.className = "error";
  }
}

function shown(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}
