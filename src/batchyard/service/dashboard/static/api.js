// The dashboard's calls: the Batch API through the service's /ui/api proxy, with the session cookie.

const API_VERSION = "2025-06-01";
const PREFIX = "/ui/api";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message ? `${code}: ${message}` : code);
    this.status = status;
    this.code = code;
  }
}

// A path of the Batch API ("/pools/p1/nodes?$filter=...") as the proxy's URL, with the api-version.
export function apiUrl(path, query = {}) {
  const url = new URL(PREFIX + path, location.origin);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  if (!url.searchParams.has("api-version")) url.searchParams.set("api-version", API_VERSION);
  return url.pathname + url.search;
}

// `odata.nextLink` names the service's own URL: keep its path and query, send it through the proxy.
export function nextLinkUrl(nextLink) {
  const url = new URL(nextLink);
  return PREFIX + url.pathname + url.search;
}

export async function call(url, { method = "GET", body, headers = {} } = {}) {
  // no-store: a cached answer would be revalidated with If-Modified-Since, whose one-second granularity calls a
  // task or file changed within the same second "not modified" (304), and the page would keep the stale one.
  const init = { method, headers: { ...headers }, credentials: "same-origin", cache: "no-store" };
  if (method !== "GET" && method !== "HEAD") init.headers["x-batchyard-dashboard"] = "1";
  if (body !== undefined) {
    init.headers["content-type"] = "application/json; odata=minimalmetadata";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (!response.ok && response.status !== 304) {
    let code = `HTTP ${response.status}`;
    let message = "";
    try {
      const error = await response.json();
      code = error.code ?? code;
      message = error.message?.value ?? "";
      const detail = (error.values ?? []).map((v) => `${v.key}: ${v.value}`).join("; ");
      if (detail) message = `${message} (${detail})`;
    } catch {
      // not a Batch error body
    }
    if (response.status === 401) window.dispatchEvent(new CustomEvent("batchyard:signed-out"));
    throw new ApiError(response.status, code, message);
  }
  return response;
}

export async function getJson(path, query) {
  const response = await call(apiUrl(path, query));
  return response.json();
}

export async function post(path, body) {
  return call(apiUrl(path), { method: "POST", body: body ?? {} });
}

// One page of a list: its items and the URL of the next page (null on the last).
export async function listPage(url) {
  const response = await call(url);
  const body = await response.json();
  return { items: body.value ?? [], next: body["odata.nextLink"] ? nextLinkUrl(body["odata.nextLink"]) : null };
}

// Every item of a list, page by page (for lists that stay small: pools, jobs, a pool's nodes).
export async function listAll(path, query = {}, limit = 5000) {
  let url = apiUrl(path, query);
  const items = [];
  while (url && items.length < limit) {
    const page = await listPage(url);
    items.push(...page.items);
    url = page.next;
  }
  return items;
}

// Bytes `start`..`end` (inclusive) of a task's or node's file.
export async function fileRange(path, start, end) {
  const response = await call(apiUrl(path), { headers: { "ocp-range": `bytes=${start}-${end}` } });
  return new Uint8Array(await response.arrayBuffer());
}

export async function fileSize(path) {
  const response = await call(apiUrl(path), { method: "HEAD" });
  return Number(response.headers.get("content-length") ?? 0);
}

// An account key (base64) or an Azure AD access token (a JWT: three base64url parts joined by dots).
export async function signIn(credential) {
  const isToken = /^[\w-]+\.[\w-]+\.[\w-]*$/.test(credential.trim());
  const response = await fetch("/ui/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(isToken ? { accessToken: credential.trim() } : { accountKey: credential.trim() }),
  });
  if (response.status === 204) return;
  let detail = `HTTP ${response.status}`;
  try {
    const error = await response.json();
    detail = (error.values ?? []).map((v) => v.value).join(" ") || error.code || detail;
  } catch {
    // keep the status
  }
  throw new Error(detail);
}

export async function signOut() {
  await fetch("/ui/session", { method: "DELETE", credentials: "same-origin" });
}

// The account's name, from the service's (unauthenticated) readiness document.
export async function accountName() {
  const response = await fetch("/", { credentials: "same-origin" });
  return (await response.json()).account;
}
