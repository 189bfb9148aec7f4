// The panel's only way to the server: the public JSON API, with the session cookie sent by
// the browser, the CSRF token echoed on every write and an Idempotency-Key on every write.

const CSRF_COOKIE = "lobster_csrf";
const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
// Fired on window whenever the API returns 401, because the session ended or never existed.
export const UNAUTHENTICATED_EVENT = "lobster:unauthenticated";

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

function readCookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return rest.join("=");
  }
  return "";
}

function newKey() {
  return crypto.randomUUID();
}

// Paths are relative ("v1/vms"), so the panel works under an API Gateway stage prefix too.
export async function request(method, path, body, options = {}) {
  const headers = { Accept: "application/json" };
  if (WRITE_METHODS.has(method)) {
    headers["X-CSRF-Token"] = readCookie(CSRF_COOKIE);
    headers["Idempotency-Key"] = options.idempotencyKey || newKey();
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";

  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (failure) {
    throw new ApiError(0, "network_error", "The server could not be reached. Check your connection and try again.", null);
  }
  return readResponse(response);
}

async function readResponse(response) {
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  const payload = type.includes("application/json") ? await response.json().catch(() => null) : await response.text();
  if (response.ok) return payload;

  if (response.status === 401) window.dispatchEvent(new CustomEvent(UNAUTHENTICATED_EVENT));
  const error = payload && payload.error ? payload.error : {};
  const message = error.message || `The server returned status ${response.status}.`;
  throw new ApiError(response.status, error.code || "http_error", message, error.field);
}

export const get = (path) => request("GET", path);
export const post = (path, body, options) => request("POST", path, body === undefined ? {} : body, options);
export const put = (path, body) => request("PUT", path, body);
export const patch = (path, body) => request("PATCH", path, body);
export const del = (path) => request("DELETE", path);

// Build "v1/ledger?month=2026-12" with each value encoded.
export function path(base, query = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== "") params.set(key, value);
  }
  const text = params.toString();
  return text ? `${base}?${text}` : base;
}

export function id(value) {
  return encodeURIComponent(value);
}
