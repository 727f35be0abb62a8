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

  /* Pairwise Cohen's kappa, confusion between raters, per-class agreement. */
  function renderAgreement(a, classes) {
    const pairs = $("pairs");
    pairs.replaceChildren();
    if (!a) return;
    $("adjudication").textContent = `Images waiting for adjudication: ${fmt(a.pending)}; `
      + `adjudicated: ${fmt(a.adjudicated)}.`;
    /* Disputes no adjudicator may decide: one line each, with the way out. */
    for (const s of a.stuck || []) {
      const line = document.createElement("strong");
      line.className = "stuck";
      line.textContent = s.message;
      $("adjudication").append(document.createElement("br"), line);
    }
    for (const p of a.pairs || []) {
      const row = document.createElement("tr");
      cell(row, p.raters.join(" / "));
      cell(row, fmt(p.n_items), true);
      cell(row, `${Math.round(100 * p.agreement)} %`, true);
      cell(row, p.kappa === null ? "n/a" : fmt(p.kappa, 3), true);
      cell(row, p.kappa_quadratic === null ? "n/a" : fmt(p.kappa_quadratic, 3), true);
      const td = document.createElement("td");
      const table = document.createElement("table");
      table.className = "confusion";
      table.setAttribute("aria-label", `confusion of ${p.raters[0]} (rows) and ${p.raters[1]}`);
      const head = document.createElement("tr");
      head.append(document.createElement("th"));
      for (const c of classes) {
        const th = document.createElement("th");
        th.scope = "col";
        th.textContent = c;
        head.append(th);
      }
      table.append(head);
      p.confusion.forEach((counts, i) => {
        const tr = document.createElement("tr");
        const th = document.createElement("th");
        th.scope = "row";
        th.textContent = classes[i] ?? i;
        tr.append(th);
        counts.forEach((n, j) => {
          const c = document.createElement("td");
          c.className = i === j ? "num diag" : "num";
          c.textContent = String(n);
          tr.append(c);
        });
        table.append(tr);
      });
      td.append(table);
      row.append(td);
      pairs.append(row);
    }
    const per = Object.entries(a.per_class || {});
    $("per-class").textContent = per.length
      ? per.map(([c, v]) => `${c} ${v === null ? "n/a" : Math.round(100 * v) + " %"}`).join(", ")
      : "\u2013";
  }

  function render(s) {
    $("project").textContent = `${s.project}: status`;
    document.title = `${s.project}: status`;
    $("kappa").textContent = s.blinded
      ? "shown to adjudicators only while the study runs"
      : s.kappa === null || s.kappa === undefined
        ? "not yet (needs images with all their labels, 2 or more each)" : fmt(s.kappa, 3);
    if (s.blinded) {
      $("adjudication").textContent = "Agreement between raters is shown to adjudicators "
        + "only while the study runs (you see your own progress).";
    }

    const raters = $("raters");
    raters.replaceChildren();
    for (const r of s.raters || []) {
      const row = document.createElement("tr");
      cell(row, r.name);
      cell(row, fmt(r.n_labels), true);
      raters.append(row);
    }

    renderAgreement(s.agreement, s.classes || []);

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
    // A failed round: which, why (one line), and when it is tried again.
    const failure = $("training-error");
    failure.textContent = t.error ? trainingFailure(t.error) : "";
    failure.hidden = !t.error;

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

  function trainingFailure(e) {
    const round = e.round === null || e.round === undefined ? "" : ` of round ${e.round}`;
    const times = e.failures > 1 ? ` (${e.failures} times in a row)` : "";
    const retry = e.retry_in === null || e.retry_in === undefined
      ? "It is tried again at the next label."
      : `It is tried again in ${Math.ceil(e.retry_in)} s.`;
    return `Training${round} failed${times}: ${e.cause}. ${retry} `
      + "The server's output has the traceback.";
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
