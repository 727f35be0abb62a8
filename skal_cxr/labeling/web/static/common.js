/* Shared by the rater and status pages: the rater's token and JSON API calls.
 *
 * The secret link is http://HOST:PORT/#token=TOKEN. The fragment never reaches
 * the server or its logs; the page moves the token into sessionStorage (this
 * tab only), removes it from the address bar and history, and sends it as
 * "Authorization: Bearer" on every API call. No cookies are used.
 */
"use strict";

const SkalCxr = (() => {
  const KEY = "skal_cxr.token";

  function takeToken() {
    const hash = window.location.hash.replace(/^#/, "");
    if (hash) {
      const token = new URLSearchParams(hash).get("token");
      if (token) {
        sessionStorage.setItem(KEY, token);
      }
      // Drop the fragment from the address bar and from this history entry.
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return sessionStorage.getItem(KEY);
  }

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail || `HTTP ${status}`);
      this.status = status;
      this.detail = detail;
    }
  }

  async function detailOf(response) {
    try {
      const body = await response.json();
      if (typeof body.detail === "string") return body.detail;
      if (Array.isArray(body.detail)) {
        return body.detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
      }
      return JSON.stringify(body.detail ?? body);
    } catch (_) {
      return response.statusText;
    }
  }

  /* fetch an /api/ path with the token; JSON in, JSON (or the raw Response) out. */
  async function api(path, { method = "GET", body, raw = false, signal } = {}) {
    const token = sessionStorage.getItem(KEY);
    const headers = { Accept: raw ? "*/*" : "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = { method, headers, signal, credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (!response.ok) {
      throw new ApiError(response.status, await detailOf(response));
    }
    if (raw) return response;
    return response.status === 204 ? null : response.json();
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function fmt(x, digits = 2) {
    if (x === null || x === undefined || Number.isNaN(x)) return "\u2013";
    if (typeof x === "number") return Number.isInteger(x) ? String(x) : x.toFixed(digits);
    return String(x);
  }

  const NO_TOKEN = "No rater token. Open your personal link (http://\u2026/#token=\u2026) "
    + "printed by \u201cskal-cxr label add-rater\u201d.";
  const BAD_TOKEN = "This link is not valid for this project (unknown token). "
    + "Ask the project owner for your personal link.";

  function forgetToken() { sessionStorage.removeItem(KEY); }

  return { takeToken, forgetToken, api, ApiError, sleep, fmt, NO_TOKEN, BAD_TOKEN };
})();
