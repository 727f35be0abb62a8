/* The rater page: one image at a time, keyboard labeling, prefetch, offline banner.
 *
 * Talks only to the JSON API (see docs/labeling_api.rst): /api/me once, then
 * /api/next -> /api/images/{id}/pixels -> POST /api/labels | /api/skip, and
 * POST /api/undo. While the server trains the next model and this rater has
 * nothing left, /api/next answers reason "waiting" and the page polls it.
 * The image itself is drawn by SkalViewer (viewer.js).
 *
 * Images are kept in a small in-memory cache keyed by image id (the API sends
 * them "no-store", so the browser's HTTP cache never holds them): undo shows
 * the previous image again from memory, and the ids /api/next lists in
 * "ahead" (the rater's next two images, when the server sends them) are
 * fetched and decoded while the rater reads the current one, across the end of
 * a batch too (the server holds reserve films then), so that a label key
 * paints the next film from memory.
 */
"use strict";

(() => {
  const { api, ApiError, fmt } = SkalCxr;
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 3000;          // while waiting for the next batch
  const POLL_MAX_MS = 15000;     // back-off ceiling after errors
  const HEARTBEAT_MS = 5000;     // is the server still there?
  const OFFLINE_HEARTBEAT_MS = 2000;
  const CACHE_BYTES = 256 * 1024 * 1024;
  const AHEAD = 2;               // films held and fetched ahead of the one on screen
  /* What a rater with nothing to label waits for (GET /api/next's waiting_for). */
  const WAITING = {
    training: "Waiting for the next batch: the model is training on the labels so far.",
    raters: "You have labeled your share of this batch. Waiting for the other raters to "
      + "finish it; the next model trains then.",
    adjudication: "The batch is labeled. Waiting for the adjudicator to decide the images "
      + "the raters disagree on; the next model trains then.",
  };

  const state = {
    me: null,
    next: null,         // the last /api/next answer (progress, prediction)
    imageId: null,      // the image on screen, null when there is none
    busy: false,        // a request that changes the image is in flight
    undo: [],           // [{label_id, image_id, label}] of this page's labels
    timer: { since: null, spent: 0 },
    polling: null,
    stopped: false,
    offline: false,
    generation: 0,      // bumped when a pasted link restarts the page
    review: null,       // {image_id, labels, pending} while adjudicating a disputed image
  };

  // -- the viewer and its overlays ----------------------------------------------
  let priors = null;     // the 2-up current/prior layout (priors.js), made below
  let zones = null;   // zone scores (zones.js), made below once the viewer exists
  const viewer = SkalViewer.create({
    wrap: $("canvas-wrap"), canvas: $("image"), loupe: $("loupe"),
    onChange: (v) => { renderOverlay(v); if (priors) priors.changed(v); },
    onNeedFull: (id) => needFull(id),
  });
  const context = SkalContext.create({
    api, box: $("film-box"), list: $("film-info"), related: $("related"),
    onToggle: (on) => $("related-toggle").setAttribute("aria-pressed", String(on)),
  });
  let fetching = false;   // the film to show next is being fetched (loading indicator)

  // -- corrections and zone scores (corrections.js, zones.js) -----------------------
  const corrections = SkalCorrections.create({
    api, ApiError, me: () => state.me, review: () => state.review,
    onDeferred: () => loadNext(), say: (text) => lastAction(text),
  });
  zones = SkalZones.create({
    api, wrap: $("canvas-wrap"), panel: $("zone-box"), viewer,
    classes: () => state.me.classes,
    active: (overlay) => state.imageId !== null && !state.review
      && (overlay || !(state.busy || state.offline || state.stopped)),
    submit: (scores) => submitLabel(-1, scores),
  });
  window.__zones = () => zones.state();
  // -- end of corrections and zone scores ---------------------------------------------

  function renderOverlay(v) {
    const st = v.state();
    $("loading").hidden = !(fetching || st.loadingFull);
    if (zones) zones.place();
    if (st.imageId === null) {
      $("wl").textContent = "";
      $("zoom").textContent = "";
      return;
    }
    const text = SkalViewer.overlayText(st);
    $("wl").textContent = text.wl;
    $("zoom").textContent = text.zoom;
    $("wl-invert").setAttribute("aria-pressed", String(st.invert));
    $("flip-h").setAttribute("aria-pressed", String(st.flipH));
    $("flip-v").setAttribute("aria-pressed", String(st.flipV));
    $("loupe-toggle").setAttribute("aria-pressed", String(st.loupe.on));
    $("pan-mode").setAttribute("aria-pressed", String(st.panMode));
    document.querySelectorAll("[data-preset]").forEach((b) => {
      b.setAttribute("aria-pressed", String(b.dataset.preset === st.preset));
    });
  }

  // -- messages and the offline banner --------------------------------------------
  function showMessage(text, kind = "info") {
    const el = $("message");
    el.textContent = text || "";
    el.className = `message ${text ? "visible" : ""} ${kind}`;
  }
  function lastAction(text) { $("last-action").textContent = text; }

  function setOffline(offline) {
    if (offline === state.offline) return;
    state.offline = offline;
    $("offline").hidden = !offline;
    $("canvas-wrap").classList.toggle("offline", offline);
    if (offline) {
      const since = new Date().toLocaleTimeString();
      $("offline-text").textContent = `Cannot reach the labeling server (since ${since}). `
        + "Labels saved so far are safe; keys are paused until it answers again. "
        + "Retrying every few seconds\u2026";
    } else {
      lastAction("Connection to the server is back.");
      if (!state.imageId && !state.busy && !state.stopped && state.me) loadNext();
    }
    setControlsEnabled(!state.busy);
    heartbeat.schedule();
  }

  /* A request that failed without an HTTP answer: the server is unreachable. */
  function isNetworkError(error) { return !(error instanceof ApiError); }

  const heartbeat = {
    timer: null,
    schedule() {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.beat(),
        state.offline ? OFFLINE_HEARTBEAT_MS : HEARTBEAT_MS);
    },
    async beat() {
      const abort = new AbortController();
      const t = setTimeout(() => abort.abort(), 4000);
      let up = false;
      try {
        const r = await fetch("/api/health", { cache: "no-store", credentials: "omit",
                                               signal: abort.signal });
        up = r.ok;
      } catch (_) {
        up = false;
      }
      clearTimeout(t);
      setOffline(!up);
      this.schedule();
    },
  };
  window.addEventListener("offline", () => heartbeat.beat());
  window.addEventListener("online", () => heartbeat.beat());

  function fatal(error) {
    state.stopped = true;
    setControlsEnabled(false);
    if (error instanceof ApiError && error.status === 401) {
      SkalCxr.forgetToken();
      showMessage(SkalCxr.BAD_TOKEN, "error");
    } else {
      showMessage(`Error: ${error.message}`, "error");
    }
  }

  // -- time spent on the image (visible time only) ----------------------------
  function timerStart() {
    state.timer = { since: document.hidden ? null : performance.now(), spent: 0 };
  }
  function timerSeconds() {
    const t = state.timer;
    const running = t.since === null ? 0 : performance.now() - t.since;
    return Math.round((t.spent + running) / 10) / 100;
  }
  document.addEventListener("visibilitychange", () => {
    const t = state.timer;
    if (document.hidden && t.since !== null) {
      t.spent += performance.now() - t.since;
      t.since = null;
    } else if (!document.hidden && t.since === null && state.imageId) {
      t.since = performance.now();
    }
  });

  // -- header, buttons, progress ----------------------------------------------
  function buildClassButtons(classes) {
    const box = $("classes");
    box.replaceChildren();
    classes.forEach((name, i) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "class-button";
      button.dataset.index = String(i);
      if (i < 9) {
        const key = document.createElement("kbd");
        key.textContent = String(i + 1);
        button.append(key, " ");
        button.setAttribute("aria-keyshortcuts", String(i + 1));
      }
      const label = document.createElement("span");
      label.textContent = name;
      button.append(label);
      button.addEventListener("click", () => submitLabel(i));
      box.append(button);
    });
    const old = $("class-keys");
    if (old) old.remove();
    const row = document.createElement("tr");
    row.id = "class-keys";
    const k = document.createElement("td");
    const shown = Math.min(classes.length, 9);
    const first = document.createElement("kbd");
    first.textContent = "1";
    k.append(first);
    if (shown > 1) {
      const last = document.createElement("kbd");
      last.textContent = String(shown);
      k.append("\u2026", last);
    }
    const d = document.createElement("td");
    d.textContent = classes.slice(0, 9).join(", ");
    row.append(k, d);
    $("key-table").prepend(row);
  }

  function setControlsEnabled(enabled) {
    const onImage = enabled && state.imageId !== null && !state.offline;
    document.querySelectorAll(".class-button").forEach((b) => { b.disabled = !onImage; });
    $("skip").disabled = !onImage || state.review !== null;
    if (zones.on) {  // zone scores: the class is the binned total, not a key
      $("classes").hidden = state.review === null;
      zones.render();
    }
    $("undo").disabled = !enabled || state.offline || state.undo.length === 0;
  }

  function renderProgress(next) {
    const batch = next.batch || {};
    const p = next.progress || {};
    // this rater's own share of the batch; the batch itself is done when every label is in
    const mine = batch.mine || { done: batch.done, total: batch.total };
    const whole = mine.done === batch.done && mine.total === batch.total ? ""
      : ` yours \u00b7 batch ${fmt(batch.done)} of ${fmt(batch.total)} complete`;
    $("batch-text").textContent = !batch.total ? "\u2013"
      : `${fmt(mine.done)} of ${fmt(mine.total)}${whole}`;
    $("batch-bar").max = Math.max(1, mine.total || 1);
    $("batch-bar").value = mine.done || 0;
    const budget = p.budget ?? p.total;
    const parts = [`${fmt(p.labeled)} of ${fmt(budget)} budget`];
    if (p.awaiting_adjudication) parts.push(`${fmt(p.awaiting_adjudication)} awaiting adjudication`);
    if (p.total !== undefined) parts.push(`pool ${fmt(p.total)}`);
    $("total-text").textContent = parts.join(" \u00b7 ");
    $("total-bar").max = Math.max(1, budget || 1);
    $("total-bar").value = Math.min(p.labeled || 0, budget || 0);
    $("round").textContent = fmt(next.round);
    const reserve = $("previous-model");
    reserve.hidden = !next.from_previous_model;
    // round 0 has no model: its reserve is the rest of the starting selection
    reserve.textContent = next.round === 0
      ? "An extra image of the starting selection, shown while the first model trains."
      : `Picked by the round ${next.round} model while the next one trains.`;
  }

  function renderPrediction(next) {
    const box = $("prediction");
    const pred = state.me && state.me.show_prediction ? next && next.prediction : null;
    box.hidden = !pred;
    const body = $("prediction-body");
    body.replaceChildren();
    if (!pred) return;
    const head = document.createElement("p");
    head.className = "big";
    head.textContent = pred.class;
    body.append(head);
    const probs = pred.probabilities || {};
    for (const name of state.me.classes) {
      if (!(name in probs)) continue;
      const row = document.createElement("div");
      row.className = "prob-row";
      const label = document.createElement("span");
      label.textContent = name;
      const bar = document.createElement("meter");
      bar.min = 0; bar.max = 1; bar.value = probs[name];
      bar.setAttribute("aria-label", `probability of ${name}`);
      const value = document.createElement("span");
      value.className = "num";
      value.textContent = `${Math.round(probs[name] * 100)} %`;
      row.append(label, bar, value);
      body.append(row);
    }
  }

  /* An adjudicator sees the raters' labels and notes of a disputed image. */
  function renderReview(review) {
    state.review = review;
    corrections.showReview(review);
    $("review").hidden = !review;
    const list = $("review-labels");
    list.replaceChildren();
    if (!review) return;
    $("review-summary").textContent = `The raters disagree on this image (${review.pending} `
      + "waiting for adjudication). Read it, then decide with the keys below; your decision "
      + "is the image's label.";
    for (const r of review.labels) {
      const li = document.createElement("li");
      const who = document.createElement("strong");
      who.textContent = r.rater;
      li.append(who, `: ${r.label}`);
      if (r.seconds !== null && r.seconds !== undefined) li.append(` (${fmt(r.seconds, 1)} s)`);
      if (r.note) {
        const note = document.createElement("span");
        note.className = "rater-note";
        note.textContent = `\u201c${r.note}\u201d`;
        li.append(note);
      }
      list.append(li);
    }
  }

  // -- fetching images, with an in-memory cache (images.js) -------------------------
  /* The longest side worth sending for this screen (a power of two, 1024..4096). */
  function displaySize() {
    const st = viewer.state();
    const longest = Math.max(st.canvas.width, st.canvas.height) * st.dpr;
    return Math.min(4096, Math.max(1024, 2 ** Math.ceil(Math.log2(Math.max(1, longest)))));
  }

  const cache = SkalImages.create({ api, ApiError, displaySize, maxBytes: CACHE_BYTES });

  // -- current and prior side by side (priors.js) ------------------------------------
  priors = SkalPriors.create({
    api, current: viewer, cache, overlayText: SkalViewer.overlayText,
    els: { box: $("viewports"), wrap: $("prior-wrap"), currentWrap: $("canvas-wrap"),
           canvas: $("prior"), loupe: $("prior-loupe"), wl: $("prior-wl"),
           zoom: $("prior-zoom"), caption: $("prior-id"), loading: $("prior-loading"),
           toggleButton: $("prior-toggle"), nextButton: $("prior-next"),
           linkButton: $("link-toggle"), tools: $("prior-tools") },
  });
  $("prior-toggle").addEventListener("click", () => priors.toggle());
  $("prior-next").addEventListener("click", () => priors.cycle(1));
  $("link-toggle").addEventListener("click", () => priors.setLinked(!priors.linked));
  /* The viewer the view keys act on: the current film, or the prior when it was clicked. */
  const active = () => priors.target();

  /* The viewer zoomed past a display-size film: fetch its full resolution. */
  function needFull(id) {
    cache.get(id, { full: true }).then((image) => {
      if (state.imageId === id) viewer.upgrade(image, id);
    }, (error) => {
      if (isNetworkError(error)) setOffline(true);
    });
  }

  /* Shows the loading indicator while a film to show is on its way (after 150 ms). */
  async function fetching_(promise) {
    const t = setTimeout(() => { fetching = true; renderOverlay(viewer); }, 150);
    try {
      return await promise;
    } finally {
      clearTimeout(t);
      if (fetching) { fetching = false; renderOverlay(viewer); }
    }
  }

  function prefetch(next) {
    const ahead = Array.isArray(next && next.ahead) ? next.ahead : [];
    for (const id of ahead) {
      if (!id || id === state.imageId) continue;
      // decoded and windowed while the rater reads: the key only draws it
      cache.get(String(id), { prefetch: true }).then((image) => viewer.prepare(image), () => {});
    }
  }

  /* A performance mark "skal:<name>" (performance.getEntriesByType("mark")). */
  function mark(name) {
    if (performance.mark) performance.mark(`skal:${name}`);
  }

  function showImage(image, id) {
    state.imageId = id;
    $("image-id").textContent = `image ${id}`;
    mark("show");
    viewer.show(image, id);
    mark("drawn");
    zones.reset();
    $("image").hidden = false;
    context.close();
    context.load(id);
    priors.load(id);
    timerStart();
  }

  function clearImage() {
    state.imageId = null;
    context.close();
    priors.clear();
    viewer.clear();
    zones.place();
    $("image").hidden = true;
    $("image-id").textContent = "";
  }

  // -- the labeling loop -------------------------------------------------------
  /* Ask for the next image. While there is none yet ("waiting") or the server
   * is unreachable, poll again later; meanwhile the page stays usable (undo). */
  async function loadNext(delay = POLL_MS) {
    clearTimeout(state.polling);
    state.polling = null;
    if (state.stopped) return;
    const generation = state.generation;
    state.busy = true;
    setControlsEnabled(false);
    let retry = null;
    try {
      if (state.me.role === "adjudicator" && state.me.adjudicate) {
        const review = await api("/api/adjudication/next");
        if (generation !== state.generation) return;
        if (review.image_id) {
          const image = await cache.get(String(review.image_id));
          if (generation !== state.generation) return;
          setOffline(false);
          showMessage("");
          renderPrediction(null);
          renderReview(review);
          showImage(image, String(review.image_id));
          state.busy = false;
          setControlsEnabled(true);
          return;
        }
      }
      renderReview(null);
      const next = await api(`/api/next?ahead=${AHEAD}`);
      if (generation !== state.generation) return;
      state.next = next;
      setOffline(false);
      renderProgress(next);
      if (next.image_id) {
        const image = await fetching_(cache.get(String(next.image_id)));
        if (generation !== state.generation) return;
        showMessage("");
        renderPrediction(next);
        showImage(image, String(next.image_id));
        prefetch(next);
      } else {
        clearImage();
        renderPrediction(null);
        if (next.reason === "done") {
          showMessage("All done: nothing left to label in this project. Thank you!", "done");
        } else {
          const failure = next.training_error;
          showMessage(failure
            ? `Waiting for the next batch: training round ${failure.round ?? ""} failed `
              + `(${failure.cause}); the server tries again by itself and the project's `
              + "owner sees it on the status page. This page checks every few seconds."
            : `${WAITING[next.waiting_for] || WAITING.training} `
              + "This page checks every few seconds.", failure ? "error" : "waiting");
          retry = POLL_MS;
        }
      }
    } catch (error) {
      if (generation !== state.generation) return;
      if (error instanceof ApiError && error.status === 401) { fatal(error); return; }
      if (isNetworkError(error)) {
        setOffline(true);               // the banner says it; the image stays, dimmed
        if (!state.imageId) showMessage("Waiting for the labeling server\u2026", "error");
      } else {
        clearImage();
        showMessage(`Server error (${error.status}): ${error.message}. Retrying\u2026`, "error");
      }
      retry = Math.min(delay * 2, POLL_MAX_MS);
    }
    state.busy = false;
    setControlsEnabled(true);
    if (retry !== null) state.polling = setTimeout(() => loadNext(retry), retry);
  }

  // -- the next film at once: held for this rater and already in memory --------------
  /* After a saved label: the film /api/next announced as this rater's next one
   * ("ahead", held for him by the server) is shown from memory at once, and
   * /api/next is asked in the background to confirm it and to bring the
   * progress and the film after it; a different answer shows that one. */
  async function showHeld(labeled) {
    const next = state.next;
    // the film after the one just labeled: a key pressed before /api/next confirmed
    // the film on screen finds that film first in the earlier answer's "ahead"
    const list = next && Array.isArray(next.ahead) ? next.ahead.map(String) : [];
    const id = list[list.indexOf(labeled) + 1] || null;
    if (!id || id === labeled || state.me.show_prediction || state.review
        || (state.me.role === "adjudicator" && state.me.adjudicate)) return false;
    // in memory, or on its way (fetched ahead): no second request for it
    const ready = cache.ready(id) || cache.inFlight(id);
    if (!ready) return false;
    const generation = state.generation;
    let image;
    try {
      image = await fetching_(ready);
    } catch (_) {
      return false;                    // loadNext asks again and says what went wrong
    }
    if (generation !== state.generation) return true;
    // the label just saved counts at once (/api/next brings the exact figures)
    const batch = next.batch || {};
    if (batch.mine) batch.mine.done += 1;
    if (state.me.labels_per_image === 1 && batch.total) batch.done += 1;
    renderProgress(next);
    showMessage("");
    showImage(image, id);
    state.busy = false;
    setControlsEnabled(true);
    confirmNext(id, generation);
    return true;
  }
  async function confirmNext(id, generation) {
    let next;
    try {
      next = await api(`/api/next?ahead=${AHEAD}`);
    } catch (_) {
      return;                          // the heartbeat and the next key deal with it
    }
    if (generation !== state.generation || state.imageId !== id || state.busy) return;
    state.next = next;
    renderProgress(next);
    if (next.image_id === id) prefetch(next);
    else loadNext();                   // the server says otherwise: show its film
  }

  async function submitLabel(index, scores = null) {
    if (state.busy || !state.imageId || state.stopped || state.offline) return;
    if (zones.on && !state.review && scores === null) return;  // scored zone by zone
    const label = scores === null ? state.me.classes[index] : null;
    if (label === undefined) return;
    const imageId = state.imageId;
    const note = $("note").value.trim();
    mark("key");                       // where a label key's time goes (the benchmark reads it)
    state.busy = true;
    setControlsEnabled(false);
    if (state.review) {
      await decide(imageId, label, note);
      return;
    }
    try {
      const saved = await api("/api/labels", {
        method: "POST",
        body: { image_id: imageId, label, seconds: timerSeconds(), note: note || null,
                ...(scores === null ? {} : { scores }) },
      });
      mark("saved");
      state.undo.push({ label_id: saved.label_id, image_id: imageId, label: saved.label });
      $("note").value = "";
      lastAction(`Saved \u201c${saved.label}\u201d for image ${imageId}. Ctrl+Z undoes it.`);
      corrections.refresh();
      if (await showHeld(imageId)) return;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) { fatal(error); return; }
      state.busy = false;
      if (error instanceof ApiError && error.status === 409) {
        lastAction(`Not saved: ${error.message}. Showing the next image.`);
      } else if (error instanceof ApiError) {
        lastAction(`Not saved (${error.status}): ${error.message}`);
        setControlsEnabled(true);
        return;
      } else {
        lastAction("Not saved: the server did not answer. Label again once it is back.");
        setOffline(true);
        setControlsEnabled(true);
        return;
      }
    }
    await loadNext();
  }

  /* An adjudicator's decision on a disputed image (no undo: decisions are final rows). */
  async function decide(imageId, label, note) {
    try {
      await api("/api/adjudications", {
        method: "POST",
        body: { image_id: imageId, label, note: note || null, seconds: timerSeconds() },
      });
      $("note").value = "";
      lastAction(`Adjudicated image ${imageId}: \u201c${label}\u201d.`);
      corrections.refresh();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) { fatal(error); return; }
      if (isNetworkError(error)) setOffline(true);
      if (!(error instanceof ApiError && error.status === 409)) {
        lastAction(`Not saved: ${error.message}`);
        state.busy = false;
        setControlsEnabled(true);
        return;
      }
      lastAction(`Not saved: ${error.message}. Showing the next image.`);
    }
    await loadNext();
  }

  async function skip() {
    if (state.busy || !state.imageId || state.stopped || state.offline || state.review) return;
    const imageId = state.imageId;
    state.busy = true;
    setControlsEnabled(false);
    try {
      await api("/api/skip", { method: "POST", body: { image_id: imageId } });
      lastAction(`Skipped image ${imageId}.`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) { fatal(error); return; }
      if (isNetworkError(error)) setOffline(true);
      lastAction(`Skip failed: ${error.message}`);
      state.busy = false;
      setControlsEnabled(true);
      return;
    }
    await loadNext();
  }

  /* Undo this page's last label, then show that image again to relabel. */
  async function undo() {
    if (state.busy || state.undo.length === 0 || state.stopped || state.offline) return;
    const entry = state.undo[state.undo.length - 1];
    clearTimeout(state.polling);
    state.polling = null;
    state.busy = true;
    setControlsEnabled(false);
    try {
      const result = await api("/api/undo", { method: "POST", body: { label_id: entry.label_id } });
      state.undo.pop();
      state.next = null;   // what /api/next held "ahead" followed the film now undone
      lastAction(`Undone \u201c${entry.label}\u201d for image ${result.image_id}. Label it again.`);
      const image = await cache.get(String(result.image_id));
      showMessage("");
      renderPrediction(null);
      renderReview(null);
      showImage(image, String(result.image_id));
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) { fatal(error); return; }
      if (isNetworkError(error)) setOffline(true);
      lastAction(`Undo failed: ${error.message}`);
      if (!state.imageId) {           // back to waiting for the next batch
        await loadNext();
        return;
      }
    }
    state.busy = false;
    setControlsEnabled(true);
  }

  // -- keyboard: labels 1..K; viewer keys after OHIF where they do not clash ---------
  const PRESET_CODES = { Digit1: "file", Digit2: "lung", Digit3: "mediastinum",
                         Digit4: "bone", Digit5: "full" };
  document.addEventListener("keydown", (event) => {
    const typing = event.target instanceof HTMLTextAreaElement
      || event.target instanceof HTMLInputElement;
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      return;                                         // the note keeps its own keys
    }
    if (event.key === "Escape" && context.open) { context.close(); return; }
    const key = event.key;
    if ((event.ctrlKey || event.metaKey) && !event.altKey && key.toLowerCase() === "z") {
      event.preventDefault();
      if (!event.repeat) undo();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const viewer = active();
    if (event.shiftKey && PRESET_CODES[event.code]) {
      event.preventDefault();
      viewer.preset(PRESET_CODES[event.code]);
      return;
    }
    const step = viewer.dragStep() * (event.shiftKey ? 20 : 5);
    let handled = true;
    if (/^[1-9]$/.test(key)) {
      if (!event.repeat) submitLabel(parseInt(key, 10) - 1);
    } else {
      switch (key.toLowerCase()) {
        case "s": if (!event.repeat) skip(); break;
        case "n": $("note").focus(); break;
        case "r": viewer.preset("file"); break;
        case "a": viewer.preset("auto"); break;
        case "i": if (!event.repeat) viewer.toggleInvert(); break;
        case "h": if (!event.repeat) viewer.flip("h"); break;
        case "v": if (!event.repeat) viewer.flip("v"); break;
        case "+": case "=": viewer.zoomAt(1.25); break;
        case "-": case "_": viewer.zoomAt(1 / 1.25); break;
        case "f": viewer.fit(); break;
        case "o": viewer.oneToOne(); break;
        case "m": if (!event.repeat) viewer.setLoupe(!viewer.loupeOn); break;
        case "c": if (!event.repeat) context.toggle(state.imageId); break;
        case "[": viewer.loupePower(-1); break;
        case "]": viewer.loupePower(1); break;
        case "p": if (!event.repeat) viewer.panMode = !viewer.panMode; break;
        // current and prior side by side: D 2-up on/off, B next prior, L link/unlink
        case "d": if (!event.repeat) priors.toggle(); break;
        case "b": if (!event.repeat) priors.cycle(event.shiftKey ? -1 : 1); break;
        case "l": if (!event.repeat) priors.setLinked(!priors.linked); break;
        case " ":
          if (event.target instanceof HTMLButtonElement) { handled = false; break; }
          viewer.resetView();
          break;
        case "arrowright": viewer.setWindow(viewer.center, viewer.width + step); break;
        case "arrowleft": viewer.setWindow(viewer.center, viewer.width - step); break;
        case "arrowdown": viewer.setWindow(viewer.center + step, viewer.width); break;
        case "arrowup": viewer.setWindow(viewer.center - step, viewer.width); break;
        default: handled = false;
      }
    }
    if (handled) event.preventDefault();
  });

  $("skip").addEventListener("click", skip);
  $("undo").addEventListener("click", undo);
  $("wl-invert").addEventListener("click", () => active().toggleInvert());
  $("zoom-in").addEventListener("click", () => active().zoomAt(1.25));
  $("zoom-out").addEventListener("click", () => active().zoomAt(1 / 1.25));
  $("zoom-fit").addEventListener("click", () => active().fit());
  $("zoom-1").addEventListener("click", () => active().oneToOne());
  $("flip-h").addEventListener("click", () => active().flip("h"));
  $("flip-v").addEventListener("click", () => active().flip("v"));
  $("loupe-toggle").addEventListener("click", () => viewer.setLoupe(!viewer.loupeOn));
  $("related-toggle").addEventListener("click", () => context.toggle(state.imageId));
  $("pan-mode").addEventListener("click", () => { viewer.panMode = !viewer.panMode; });
  document.querySelectorAll("[data-preset]").forEach((b) => {
    b.addEventListener("click", () => active().preset(b.dataset.preset));
  });

  // -- start, and restart when a link is pasted into this tab ----------------------
  async function start() {
    clearImage();
    setControlsEnabled(false);
    if (!SkalCxr.takeToken()) {
      state.stopped = true;
      showMessage(SkalCxr.NO_TOKEN, "error");
      return;
    }
    const generation = state.generation;
    try {
      state.me = await api("/api/me");
    } catch (error) {
      if (generation !== state.generation) return;
      if (isNetworkError(error)) {
        setOffline(true);
        showMessage("Waiting for the labeling server\u2026", "error");
        state.polling = setTimeout(() => { if (generation === state.generation) start(); },
                                   OFFLINE_HEARTBEAT_MS);
        return;
      }
      fatal(error);
      return;
    }
    if (generation !== state.generation) return;
    $("project").textContent = state.me.project;
    $("rater").textContent = state.me.rater;
    document.title = `${state.me.project}: labeling`;
    buildClassButtons(state.me.classes);
    setControlsEnabled(false);   // no class key before an image is shown
    try {
      await zones.start();
    } catch (error) {
      fatal(error);
      return;
    }
    corrections.refresh();
    await loadNext();
  }

  /* A link (#token=...) pasted into the address bar of an open tab changes only
   * the fragment: no reload happens, so take the token and start again. */
  window.addEventListener("hashchange", () => {
    if (!new URLSearchParams(window.location.hash.replace(/^#/, "")).get("token")) return;
    state.generation += 1;
    clearTimeout(state.polling);
    Object.assign(state, { me: null, next: null, busy: false, undo: [], stopped: false,
                           review: null });
    cache.clear();
    lastAction("");
    showMessage("");
    start();
  });

  /* When the page goes away (tab closed, reload, another address), give back the
   * images it holds (the one shown and the prefetched ones), so that other raters
   * get them now rather than after the lease. A keepalive fetch outlives the page
   * and, unlike navigator.sendBeacon, carries the Authorization header. */
  window.addEventListener("pagehide", () => {
    const token = sessionStorage.getItem("skal_cxr.token");
    if (!token || !state.me) return;
    try {
      fetch("/api/release", {
        method: "POST",
        keepalive: true,
        credentials: "omit",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: "{}",
      }).catch(() => {});
    } catch (_) { /* the page is going away anyway */ }
  });
  // Back from the back-forward cache: what it held was given back, so ask again.
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted || !state.me) return;
    state.generation += 1;
    cache.clear();
    loadNext(0);
  });

  window.__viewer = {
    state: () => ({ ...viewer.state(), busy: state.busy, offline: state.offline }),
    cache: () => ({ ...cache.stats, ids: [...cache.entries.keys()],
                    ready: [...cache.entries].filter(([, e]) => e.ready).map(([id]) => id) }),
    sourceStats: () => viewer.sourceStats(),
    view: () => viewer.view(),
    prior: () => priors.state(),
    toScreen: (x, y) => viewer.toScreen(x, y),
    toImage: (x, y) => viewer.toImage(x, y),
  };
  heartbeat.schedule();
  start();
})();
