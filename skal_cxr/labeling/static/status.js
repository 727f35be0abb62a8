/* The status page: per-rater counts, Fleiss' kappa, rounds, training, stopping.
 * Reads GET /api/status every few seconds with the rater's token.
 */
"use strict";

(() => {
  const { api, ApiError, sleep, fmt } = SkalCxr;
  const $ = (id) => document.getElementById(id);
  const REFRESH_MS = 5000;

  function cell(row, text, numeric = false) {
    const td = document.createElement("td");
    td.textContent = text;
    if (numeric) td.className = "num";
    row.append(td);
  }

  function kv(list, key, value) {
    const dt = document.createElement("dt");
    dt.textContent = key;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  }

  function listOf(x, digits = 3) {
    if (Array.isArray(x)) return x.length ? x.map((v) => fmt(v, digits)).join(", ") : "\u2013";
    return fmt(x, digits);
  }

  /* Class counts come as a list in class order, or as {class: count}. */
  function counts(c, classes) {
    if (!c || typeof c !== "object") return "\u2013";
    const pairs = Array.isArray(c) ? c.map((v, i) => [classes[i] ?? i, v]) : Object.entries(c);
    return pairs.map(([k, v]) => `${k} ${v}`).join(", ");
  }

  function render(s) {
    $("project").textContent = `${s.project}: status`;
    document.title = `${s.project}: status`;
    $("kappa").textContent = s.kappa === null || s.kappa === undefined
      ? "not yet (needs images with all their labels, 2 or more each)" : fmt(s.kappa, 3);

    const raters = $("raters");
    raters.replaceChildren();
    for (const r of s.raters || []) {
      const row = document.createElement("tr");
      cell(row, r.name);
      cell(row, fmt(r.n_labels), true);
      raters.append(row);
    }

    const rounds = $("rounds");
    rounds.replaceChildren();
    for (const r of s.rounds || []) {
      const row = document.createElement("tr");
      cell(row, fmt(r.round), true);
      cell(row, r.strategy ?? "\u2013");
      cell(row, fmt(r.n_queried), true);
      cell(row, fmt(r.n_labeled), true);
      cell(row, fmt(r.fit_time, 1), true);
      cell(row, fmt(r.query_time, 1), true);
      cell(row, counts(r.class_counts, s.classes || []));
      rounds.append(row);
    }
    if (!rounds.children.length) {
      const row = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 7;
      td.textContent = "No round finished yet.";
      row.append(td);
      rounds.append(row);
    }

    const t = s.training || {};
    const state = t.state ?? "\u2013";
    $("training-state").textContent = t.round !== undefined && t.round !== null
      ? `${state} (round ${t.round})` : state;
    const bar = $("training-bar");
    if (typeof t.progress === "number") {
      bar.max = 1;
      bar.value = Math.max(0, Math.min(1, t.progress));
      bar.hidden = false;
    } else {
      bar.hidden = true;
    }

    const stop = s.stopping || {};
    const verdict = $("stop-verdict");
    verdict.textContent = stop.stop ? "Stop: predictions have stabilised or the budget is spent"
      : "Keep labeling";
    verdict.className = `big ${stop.stop ? "stop" : "go"}`;
    const details = $("stop-details");
    details.replaceChildren();
    kv(details, "Agreement of successive models (\u03ba)", listOf(stop.kappa_window));
    kv(details, "Threshold", fmt(stop.threshold, 3));
    kv(details, "Budget left", stop.budget_left === null || stop.budget_left === undefined
      ? "no budget (whole pool)" : fmt(stop.budget_left));

    $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  }

  async function loop() {
    if (!SkalCxr.takeToken()) {
      $("message").textContent = SkalCxr.NO_TOKEN;
      return;
    }
    for (;;) {
      try {
        render(await api("/api/status"));
        $("message").textContent = "";
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) {
          SkalCxr.forgetToken();
          $("message").textContent = SkalCxr.BAD_TOKEN;
          return;
        }
        $("message").textContent = `Could not refresh (${error.message}); retrying.`;
      }
      await sleep(REFRESH_MS);
    }
  }
  loop();
})();
