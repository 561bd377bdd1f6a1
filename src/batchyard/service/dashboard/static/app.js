// The dashboard's shell: sign-in, the `#/...` router, and handing live records to the open view.

import { call, apiUrl, signIn, signOut } from "./api.js";
import { h, errorBox } from "./dom.js";
import { startLive, stopLive, subscribe } from "./live.js";
import * as overview from "./views/overview.js";
import * as pools from "./views/pools.js";
import * as pool from "./views/pool.js";
import * as node from "./views/node.js";
import * as jobs from "./views/jobs.js";
import * as job from "./views/job.js";
import * as task from "./views/task.js";
import * as events from "./views/events.js";

const ROUTES = [
  [/^\/$/, overview],
  [/^\/pools$/, pools],
  [/^\/pools\/([^/]+)$/, pool],
  [/^\/pools\/([^/]+)\/nodes\/([^/]+)$/, node],
  [/^\/jobs$/, jobs],
  [/^\/jobs\/([^/]+)$/, job],
  [/^\/jobs\/([^/]+)\/tasks\/([^/]+)$/, task],
  [/^\/events$/, events],
];

const main = document.getElementById("main");
let unsubscribe = () => {};
let generation = 0;

async function signedIn() {
  try {
    await call(apiUrl("/pools", { maxresults: 1, $select: "id" }));
    return true;
  } catch (error) {
    if (error.status === 401) return false;
    throw error;
  }
}

function showSignIn(message) {
  stopLive();
  unsubscribe();
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  const input = h("input", {
    id: "account-key",
    name: "accountKey",
    type: "password",
    autocomplete: "off",
    required: true,
    "aria-describedby": "sign-in-help",
  });
  const status = h("p", { id: "sign-in-status", role: "alert" }, message ?? "");
  const form = h(
    "form",
    { class: "sign-in", id: "sign-in" },
    h("h1", {}, "Sign in"),
    h("label", { for: "account-key" }, "Account key or access token"),
    input,
    h("p", { id: "sign-in-help", class: "muted" }, "One of the account's keys, or an Azure AD access token over HTTPS. The page does not keep it."),
    h("button", { type: "submit" }, "Sign in"),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "Signing in…";
    try {
      await signIn(input.value);
      input.value = "";
      await start();
    } catch (error) {
      input.value = "";
      status.textContent = `Sign-in failed: ${error.message}`;
      status.className = "error";
      input.focus();
    }
  });
  main.replaceChildren(form);
  input.focus();
}

async function route() {
  const mine = ++generation;
  unsubscribe();
  unsubscribe = () => {};
  const path = decodeURI(location.hash.replace(/^#/, "") || "/");
  const match = ROUTES.map(([pattern, view]) => [path.match(pattern), view]).find(([m]) => m);
  for (const a of document.querySelectorAll("#nav a")) {
    const section = a.getAttribute("href").slice(1);
    const current = section === "/" ? path === "/" : path.startsWith(section);
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!match) {
    main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, `Nothing at ${path}.`));
    return;
  }
  const [found, view] = match;
  const params = found.slice(1).map(decodeURIComponent);
  const container = h("div", { class: "view" });
  main.replaceChildren(container);
  try {
    const live = await view.render(container, ...params);
    if (mine !== generation) return;
    if (live) unsubscribe = subscribe(live);
  } catch (error) {
    if (mine === generation && error.status !== 401) container.replaceChildren(errorBox(error));
  }
  main.focus({ preventScroll: true });
}

async function start() {
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
  startLive();
  await route();
}

window.addEventListener("hashchange", () => {
  if (!document.getElementById("nav").hidden) route();
});
window.addEventListener("batchyard:signed-out", () => showSignIn("The session ended: sign in again."));
document.getElementById("sign-out").addEventListener("click", async () => {
  await signOut();
  showSignIn("Signed out.");
});

(async () => {
  try {
    if (await signedIn()) await start();
    else showSignIn();
  } catch (error) {
    main.replaceChildren(errorBox(error));
  }
})();
