/* Corrections: the rater's own labels (and an adjudicator's decisions), each correctable;
 * an adjudicator's deferral of the dispute on screen.
 *
 * GET /api/labels/mine lists the rater's standing labels, most recent first,
 * and the decisions of an adjudicator. Correcting one (POST
 * /api/labels/correct, or /api/adjudications/revise for a decision) adds a
 * new event superseding it: the old value stays in the audit trail. In a
 * project with zone scores, a label is corrected by typing its new scores
 * (space-separated, in the order of the zone panel; the server bins the
 * total). D (or the Defer button) asks an adjudicator for a
 * reason and puts the dispute on screen back, at the end of their queue.
 */
"use strict";

const SkalCorrections = (() => {
  function create({ api, ApiError, me, review, onDeferred, say }) {
    const $ = (id) => document.getElementById(id);
    const box = $("mine-box");

    function when(iso) {
      const d = new Date(iso);
      return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
    }

    function classPicker(current) {
      const select = document.createElement("select");
      for (const name of me().classes) {
        const option = document.createElement("option");
        option.value = name;
        option.textContent = name;
        option.selected = name === current;
        select.append(option);
      }
      return select;
    }

    function row(item, kind) {
      const li = document.createElement("li");
      li.dataset.imageId = item.image_id;
      li.className = kind;
      const what = document.createElement("span");
      what.className = "mine-what";
      what.textContent = `image ${item.image_id} (${item.filename}): `;
      const value = document.createElement("strong");
      value.textContent = item.label;
      what.append(value);
      if (item.scores) what.append(` [${item.scores.join(" ")}]`);
      if (item.corrected || item.revised) what.append(" (corrected)");
      const time = document.createElement("span");
      time.className = "small";
      time.textContent = ` ${kind === "decision" ? "decided" : "labeled"} ${when(item.created_at)}`;
      li.append(what, time);
      if (item.scores) {                  // zone scores: type the new ones
        const input = document.createElement("input");
        input.type = "text";
        input.className = "mine-scores";
        input.value = input.dataset.original = item.scores.join(" ");
        input.setAttribute("aria-label", `new scores of image ${item.image_id}`);
        const button = document.createElement("button");
        button.type = "button";
        button.className = "mine-correct";
        button.textContent = "Correct";
        const send = () => {
          const scores = input.value.trim().split(/[\s,;]+/).map(Number);
          correct(item, kind, null, button, scores);
        };
        button.addEventListener("click", send);
        input.addEventListener("keydown", (event) => {
          if (event.key === "Enter") { event.preventDefault(); send(); }
        });
        li.append(input, button);
        return li;
      }
      const select = classPicker(item.label);
      select.dataset.original = item.label;
      select.setAttribute("aria-label", `correct the ${kind} of image ${item.image_id}`);
      const button = document.createElement("button");
      button.type = "button";
      button.className = "mine-correct";
      button.textContent = kind === "decision" ? "Revise" : "Correct";
      button.addEventListener("click", () => correct(item, kind, select.value, button));
      li.append(select, button);
      return li;
    }

    /* Refreshes can overlap (a saved label and the panel opened at once): only
     * the latest one's answer is drawn, and a value the rater has changed but
     * not sent yet is kept through the redraw. */
    let generation = 0;
    function pending(list) {
      const kept = new Map();
      for (const li of list.querySelectorAll("li")) {
        const field = li.querySelector("select, input.mine-scores");
        if (field && field.value !== field.dataset.original) {
          kept.set(`${li.className}:${li.dataset.imageId}`, field.value);
        }
      }
      return kept;
    }
    async function refresh() {
      if (!me()) return;
      const mine_generation = ++generation;
      try {
        const mine = await api("/api/labels/mine");
        if (mine_generation !== generation) return;   // a later refresh draws
        const list = $("mine-list");
        const kept = pending(list);
        list.replaceChildren(...mine.decisions.map((d) => row(d, "decision")),
                             ...mine.labels.map((l) => row(l, "label")));
        for (const li of list.querySelectorAll("li")) {
          const value = kept.get(`${li.className}:${li.dataset.imageId}`);
          const field = li.querySelector("select, input.mine-scores");
          if (value !== undefined && field) field.value = value;
        }
        $("mine-count").textContent = String(mine.labels.length + mine.decisions.length);
      } catch (error) {
        if (error instanceof ApiError) say(`Could not list your labels: ${error.message}`);
      }
    }

    async function correct(item, kind, label, button, scores = null) {
      if (scores === null && label === item.label) {
        say(`Image ${item.image_id} is \u201c${label}\u201d already.`);
        return;
      }
      button.disabled = true;
      try {
        const out = kind === "decision"
          ? await api("/api/adjudications/revise", {
            method: "POST", body: { image_id: item.image_id, label },
          })
          : await api("/api/labels/correct", {
            method: "POST",
            body: scores === null ? { label_id: item.label_id, label }
              : { label_id: item.label_id, scores },
          });
        say(`Corrected image ${out.image_id}: \u201c${out.previous_label}\u201d \u2192 `
          + `\u201c${out.label}\u201d.`);
      } catch (error) {
        say(`Not corrected: ${error.message}`);
      }
      await refresh();
    }

    // -- an adjudicator defers the dispute on screen -------------------------------
    function askDefer() {
      if (!review()) return;
      $("defer-form").hidden = false;
      $("defer-reason").focus();
    }
    async function defer() {
      const current = review();
      const reason = $("defer-reason").value.trim();
      if (!current) return;
      if (!reason) { say("A deferral needs a reason."); $("defer-reason").focus(); return; }
      try {
        await api("/api/adjudication/defer", {
          method: "POST", body: { image_id: current.image_id, reason },
        });
        $("defer-reason").value = "";
        $("defer-form").hidden = true;
        say(`Deferred image ${current.image_id}: it comes back at the end of your queue.`);
        onDeferred();
      } catch (error) {
        say(`Not deferred: ${error.message}`);
      }
    }
    $("defer").addEventListener("click", askDefer);
    $("defer-reason").addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); defer(); }
    });
    $("defer-save").addEventListener("click", defer);
    document.addEventListener("keydown", (event) => {
      const target = event.target;
      if (target instanceof HTMLTextAreaElement || target instanceof HTMLInputElement
          || target instanceof HTMLSelectElement) return;
      if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
      if (event.key.toLowerCase() === "d" && review()) {
        event.preventDefault();
        event.stopImmediatePropagation();
        askDefer();
      }
    }, true);

    /* The review on screen changed: show its deferral, if any. */
    function showReview(current) {
      $("defer").hidden = !current;
      $("defer-form").hidden = true;
      const note = $("deferred-note");
      note.hidden = !(current && current.deferred);
      if (current && current.deferred) {
        note.textContent = `You deferred it: \u201c${current.deferred.reason}\u201d.`;
      }
    }

    box.addEventListener("toggle", () => { if (box.open) refresh(); });
    return { refresh, showReview };
  }
  return { create };
})();
