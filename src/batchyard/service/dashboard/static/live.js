// Live updates: the service's Service Log stream (GET /_batchyard/events, server-sent events) through the
// proxy. Views subscribe to its records and refresh only what a record is about. When the stream is off
// (the service runs without --diagnostic-logs), views are told to refresh on a short timer instead.
// Either way a slower tick also reaches them, for changes no event reports (a node becoming idle).

import { apiUrl } from "./api.js";

const TICK_WITH_EVENTS_MS = 5000;
const TICK_WITHOUT_EVENTS_MS = 2000;
const KEPT_RECORDS = 500;

const subscribers = new Set();
export const recent = []; // newest last
let mode = "connecting";
let timer = null;
let source = null;

export function subscribe(subscriber) {
  subscribers.add(subscriber);
  return () => subscribers.delete(subscriber);
}

export function liveMode() {
  return mode;
}

function show(status) {
  mode = status;
  const element = document.getElementById("live");
  element.textContent =
    status === "events" ? "● Live (event stream)" : status === "polling" ? "◌ Live (polling)" : "… connecting";
  element.dataset.mode = status;
}

function tickEvery(milliseconds) {
  clearInterval(timer);
  timer = setInterval(() => {
    for (const subscriber of subscribers) subscriber.onTick?.();
  }, milliseconds);
}

export function startLive() {
  if (source) return;
  show("connecting");
  tickEvery(TICK_WITHOUT_EVENTS_MS);
  source = new EventSource(apiUrl("/_batchyard/events"));
  source.onopen = () => {
    show("events");
    tickEvery(TICK_WITH_EVENTS_MS);
  };
  source.onerror = () => {
    // A refused stream (409: diagnostic logs are off, 401: signed out) is closed for good; a dropped one
    // reconnects by itself, from the last event id it saw.
    if (source.readyState === EventSource.CLOSED) {
      show("polling");
      tickEvery(TICK_WITHOUT_EVENTS_MS);
    } else {
      show("connecting");
    }
  };
  // Every record is sent with its operationName as the event type: listen to what the stream sends.
  const deliver = (message) => {
    let record;
    try {
      record = JSON.parse(message.data);
    } catch {
      return;
    }
    record.sequence = Number(message.lastEventId);
    recent.push(record);
    if (recent.length > KEPT_RECORDS) recent.shift();
    for (const subscriber of subscribers) subscriber.onRecord?.(record);
  };
  for (const name of OPERATION_NAMES) source.addEventListener(name, deliver);
  source.addEventListener("message", deliver);
}

export function stopLive() {
  source?.close();
  source = null;
  clearInterval(timer);
}

// The Service Log events the service records (service/diagnostics/recorder.py): each is an SSE event type.
const OPERATION_NAMES = [
  "PoolCreateEvent",
  "PoolDeleteStartEvent",
  "PoolDeleteCompleteEvent",
  "PoolResizeStartEvent",
  "PoolResizeCompleteEvent",
  "PoolAutoScaleEvent",
  "TaskStartEvent",
  "TaskCompleteEvent",
  "TaskFailEvent",
  "TaskScheduleFailEvent",
  "SpecialTaskEvent",
];

// What a record is about, for views deciding whether to refresh.
export function about(record) {
  const p = record.properties ?? {};
  const isPool = record.operationName?.startsWith("Pool");
  return {
    poolId: isPool ? p.id : p.nodeInfo?.poolId ?? p.poolId,
    nodeId: p.nodeInfo?.nodeId,
    jobId: p.jobId,
    taskId: isPool ? undefined : p.id ?? p.taskName,
  };
}
