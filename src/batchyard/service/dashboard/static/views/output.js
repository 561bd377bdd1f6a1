// A live-tailing view of a file (a task's stdout.txt/stderr.txt, a node's file): the last part at first,
// then only the bytes added since, read with ocp-range while `following()` says the file may grow.

import { fileRange, fileSize } from "../api.js";
import { h } from "../dom.js";

const FIRST_READ_BYTES = 256 * 1024;
const POLL_MS = 1000;

export function tail(filePath, following, id) {
  const text = h("pre", { class: "output", id, tabindex: 0, "aria-live": "off" });
  const status = h("p", { class: "muted", role: "status" });
  const box = h("div", { class: "output-box" }, text, status);
  let offset = null;
  let stopped = false;
  let decoder = new TextDecoder();

  const readOnce = async () => {
    let size;
    try {
      size = await fileSize(filePath);
    } catch (error) {
      status.textContent = error.status === 404 ? "No such file yet." : error.message;
      return;
    }
    if (offset === null) {
      offset = Math.max(0, size - FIRST_READ_BYTES);
      if (offset > 0) text.append(`… (the first ${offset} bytes are not shown)\n`);
    }
    if (size < offset) {
      // Replaced by a shorter file: start over.
      offset = 0;
      decoder = new TextDecoder();
      text.textContent = "";
    }
    if (size > offset) {
      const atBottom = text.scrollTop + text.clientHeight >= text.scrollHeight - 4;
      const bytes = await fileRange(filePath, offset, size - 1);
      offset += bytes.length;
      text.append(decoder.decode(bytes, { stream: true }));
      if (atBottom) text.scrollTop = text.scrollHeight;
    }
    status.textContent = `${offset} bytes${following() ? ", following" : ""}.`;
  };
  // One read at a time (the loop's and a poke's would both append the same new bytes).
  let reading = Promise.resolve();
  const read = () => (reading = reading.then(readOnce, readOnce));

  const loop = async () => {
    while (!stopped && box.isConnected) {
      const more = following();
      await read().catch((error) => (status.textContent = error.message));
      if (!more) break; // one read after the writer finished, then stop
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  };
  setTimeout(loop, 0); // once the caller has put the box in the page (a box taken out of it stops the loop)
  return { element: box, stop: () => (stopped = true), poke: () => read().catch(() => {}) };
}
