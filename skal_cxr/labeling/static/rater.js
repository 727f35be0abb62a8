/* The rater page: one image at a time, window/level, keyboard labeling.
 *
 * Talks only to the JSON API (see docs/labeling_api.rst): /api/me once, then
 * /api/next -> /api/images/{id}/pixels -> POST /api/labels | /api/skip, and
 * POST /api/undo. While the server trains the next model and this rater has
 * nothing left, /api/next answers reason "waiting" and the page polls it.
 */
"use strict";

(() => {
  const { api, ApiError, fmt } = SkalCxr;
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 3000;          // while waiting for the next batch
  const POLL_MAX_MS = 15000;     // back-off ceiling after connection errors

  const state = {
    me: null,
    next: null,         // the last /api/next answer (progress, prediction)
    imageId: null,      // the image on screen, null when there is none
    image: null,        // {data, width, height, min, max, hist, center, width0}
    center: 0,
    width: 1,
    invert: false,
    busy: false,        // a request that changes the image is in flight
    undo: [],           // [{label_id, image_id, label}] of this page's labels
    timer: { since: null, spent: 0 },
    polling: null,
    stopped: false,
  };

  // -- messages --------------------------------------------------------------
  function showMessage(text, kind = "info") {
    const el = $("message");
    el.textContent = text || "";
    el.className = `message ${text ? "visible" : ""} ${kind}`;
  }
  function lastAction(text) { $("last-action").textContent = text; }

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
    const keys = $("key-table");
    const row = document.createElement("tr");
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
    keys.prepend(row);
  }

  function setControlsEnabled(enabled) {
    const onImage = enabled && state.imageId !== null;
    document.querySelectorAll(".class-button").forEach((b) => { b.disabled = !onImage; });
    $("skip").disabled = !onImage;
    $("undo").disabled = !enabled || state.undo.length === 0;
  }

  function renderProgress(next) {
    const batch = next.batch || {};
    const p = next.progress || {};
    $("batch-text").textContent = batch.total ? `${fmt(batch.done)} of ${fmt(batch.total)}` : "\u2013";
    $("batch-bar").max = Math.max(1, batch.total || 1);
    $("batch-bar").value = batch.done || 0;
    const budget = p.budget ?? p.total;
    const parts = [`${fmt(p.labeled)} of ${fmt(budget)} budget`];
    if (p.total !== undefined) parts.push(`pool ${fmt(p.total)}`);
    $("total-text").textContent = parts.join(" \u00b7 ");
    $("total-bar").max = Math.max(1, budget || 1);
    $("total-bar").value = Math.min(p.labeled || 0, budget || 0);
    $("round").textContent = fmt(next.round);
    $("previous-model").hidden = !next.from_previous_model;
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

  // -- the image and window/level ---------------------------------------------
  const canvas = $("image");
  const ctx = canvas.getContext("2d", { alpha: false });
  let frame = null;
  let imageData = null;

  function statsOf(data) {
    let min = 65535, max = 0;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (data.length === 0) { min = 0; max = 0; }
    const hist = new Uint32Array(max - min + 1);
    for (let i = 0; i < data.length; i++) hist[data[i] - min]++;
    return { min, max, hist };
  }

  function percentile(image, q) {
    const target = q * (image.data.length - 1);
    let seen = 0;
    for (let i = 0; i < image.hist.length; i++) {
      seen += image.hist[i];
      if (seen > target) return image.min + i;
    }
    return image.max;
  }

  async function fetchPixels(id) {
    const response = await api(`/api/images/${encodeURIComponent(id)}/pixels`, { raw: true });
    const width = parseInt(response.headers.get("X-Image-Width"), 10);
    const height = parseInt(response.headers.get("X-Image-Height"), 10);
    const buffer = await response.arrayBuffer();
    if (!(width > 0 && height > 0) || buffer.byteLength !== width * height * 2) {
      throw new Error(`image ${id}: ${buffer.byteLength} bytes for ${width}x${height} pixels`);
    }
    let data;
    if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) {
      data = new Uint16Array(buffer);                 // little-endian host
    } else {
      const view = new DataView(buffer);
      data = new Uint16Array(width * height);
      for (let i = 0; i < data.length; i++) data[i] = view.getUint16(2 * i, true);
    }
    const image = { data, width, height, ...statsOf(data) };
    const c = parseFloat(response.headers.get("X-Window-Center"));
    const w = parseFloat(response.headers.get("X-Window-Width"));
    image.center0 = Number.isFinite(c) ? c : (image.min + image.max + 1) / 2;
    image.width0 = Number.isFinite(w) && w >= 1 ? w : Math.max(1, image.max - image.min + 1);
    return image;
  }

  /* Fallback when the server cannot give raw pixels: the 8-bit PNG. */
  async function fetchPng(id) {
    const response = await api(`/api/images/${encodeURIComponent(id)}`, { raw: true });
    const bitmap = await createImageBitmap(await response.blob());
    const scratch = document.createElement("canvas");
    scratch.width = bitmap.width; scratch.height = bitmap.height;
    const sctx = scratch.getContext("2d");
    sctx.drawImage(bitmap, 0, 0);
    const rgba = sctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    const data = new Uint16Array(bitmap.width * bitmap.height);
    for (let i = 0; i < data.length; i++) data[i] = rgba[4 * i];
    const image = { data, width: bitmap.width, height: bitmap.height, ...statsOf(data) };
    image.center0 = 127.5; image.width0 = 256;
    return image;
  }

  function fitCanvas() {
    const image = state.image;
    if (!image) return;
    const wrap = $("canvas-wrap");
    const scale = Math.min(wrap.clientWidth / image.width, wrap.clientHeight / image.height);
    canvas.style.width = `${Math.max(1, Math.floor(image.width * scale))}px`;
    canvas.style.height = `${Math.max(1, Math.floor(image.height * scale))}px`;
  }
  new ResizeObserver(fitCanvas).observe($("canvas-wrap"));

  /* DICOM PS3.3 C.11.2.1.2 linear VOI function, through a lookup table. */
  function draw() {
    frame = null;
    const image = state.image;
    if (!image) return;
    const n = image.max - image.min + 1;
    const lut = new Uint32Array(n);
    const c = state.center - 0.5;
    const w = Math.max(1, state.width) - 1;
    for (let i = 0; i < n; i++) {
      const v = image.min + i;
      let g;
      if (w === 0) g = v > c ? 255 : 0;
      else if (v <= c - w / 2) g = 0;
      else if (v > c + w / 2) g = 255;
      else g = Math.round(((v - c) / w + 0.5) * 255);
      if (state.invert) g = 255 - g;
      lut[i] = 0xff000000 | (g << 16) | (g << 8) | g;   // RGBA bytes on little-endian
    }
    const out = new Uint32Array(imageData.data.buffer);
    const data = image.data;
    const min = image.min;
    for (let i = 0; i < data.length; i++) out[i] = lut[data[i] - min];
    ctx.putImageData(imageData, 0, 0);
    $("wl").textContent = `W ${Math.round(state.width)}  L ${Math.round(state.center)}`
      + (state.invert ? "  inverted" : "");
  }
  function requestDraw() { if (frame === null) frame = requestAnimationFrame(draw); }

  function setWindow(center, width) {
    state.center = center;
    state.width = Math.max(1, width);
    requestDraw();
  }
  function resetWindow() {
    if (!state.image) return;
    setWindow(state.image.center0, state.image.width0);
  }
  function autoWindow() {
    const image = state.image;
    if (!image) return;
    const lo = percentile(image, 0.02), hi = percentile(image, 0.98);
    setWindow((lo + hi + 1) / 2, Math.max(1, hi - lo + 1));
  }
  function toggleInvert() {
    state.invert = !state.invert;
    $("wl-invert").setAttribute("aria-pressed", String(state.invert));
    requestDraw();
  }
  /* One screen pixel of drag moves the window by this many pixel values. */
  function dragStep() {
    const image = state.image;
    return image ? Math.max(image.max - image.min + 1, 2) / 400 : 1;
  }

  function showImage(image, id) {
    state.image = image;
    state.imageId = id;
    canvas.width = image.width;
    canvas.height = image.height;
    imageData = ctx.createImageData(image.width, image.height);
    canvas.setAttribute("aria-label", `chest X-ray ${id}, ${image.width} by ${image.height} pixels`);
    $("image-id").textContent = `image ${id}`;
    canvas.dataset.imageId = id;
    fitCanvas();
    resetWindow();
    draw();
    canvas.hidden = false;
    timerStart();
  }

  function clearImage() {
    state.image = null;
    state.imageId = null;
    canvas.hidden = true;
    $("wl").textContent = "";
    $("image-id").textContent = "";
    delete canvas.dataset.imageId;
  }

  let drag = null;
  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || !state.image) return;
    canvas.setPointerCapture(event.pointerId);
    drag = { x: event.clientX, y: event.clientY, center: state.center, width: state.width };
    canvas.classList.add("dragging");
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const step = dragStep();
    setWindow(drag.center + (event.clientY - drag.y) * step,
              drag.width + (event.clientX - drag.x) * step);
  });
  const endDrag = () => { drag = null; canvas.classList.remove("dragging"); };
  canvas.addEventListener("pointerup", endDrag);
  canvas.addEventListener("pointercancel", endDrag);
  canvas.addEventListener("dblclick", resetWindow);

  // -- the labeling loop -------------------------------------------------------
  async function loadImage(id) {
    try {
      return await fetchPixels(id);
    } catch (error) {
      if (error instanceof ApiError && [401, 404, 409].includes(error.status)) throw error;
      return fetchPng(id);
    }
  }

  /* Ask for the next image. While there is none yet ("waiting") or the server
   * is unreachable, poll again later; meanwhile the page stays usable (undo). */
  async function loadNext(delay = POLL_MS) {
    clearTimeout(state.polling);
    state.polling = null;
    if (state.stopped) return;
    state.busy = true;
    setControlsEnabled(false);
    let retry = null;
    try {
      const next = await api("/api/next");
      state.next = next;
      renderProgress(next);
      if (next.image_id) {
        const image = await loadImage(next.image_id);
        showMessage("");
        renderPrediction(next);
        showImage(image, next.image_id);
      } else {
        clearImage();
        renderPrediction(null);
        if (next.reason === "done") {
          showMessage("All done: nothing left to label in this project. Thank you!", "done");
        } else {
          showMessage("Waiting for the next batch: the model is training on the labels so "
            + "far. This page checks every few seconds.", "waiting");
          retry = POLL_MS;
        }
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) { fatal(error); return; }
      clearImage();
      if (error instanceof ApiError) {
        showMessage(`Server error (${error.status}): ${error.message}. Retrying\u2026`, "error");
      } else {
        showMessage("Connection to the labeling server lost. Retrying\u2026", "error");
      }
      retry = Math.min(delay * 2, POLL_MAX_MS);
    }
    state.busy = false;
    setControlsEnabled(true);
    if (retry !== null) state.polling = setTimeout(() => loadNext(retry), retry);
  }

  async function submitLabel(index) {
    if (state.busy || !state.imageId || state.stopped) return;
    const label = state.me.classes[index];
    if (label === undefined) return;
    const imageId = state.imageId;
    const note = $("note").value.trim();
    state.busy = true;
    setControlsEnabled(false);
    try {
      const saved = await api("/api/labels", {
        method: "POST",
        body: { image_id: imageId, label, seconds: timerSeconds(), note: note || null },
      });
      state.undo.push({ label_id: saved.label_id, image_id: imageId, label });
      $("note").value = "";
      lastAction(`Saved \u201c${label}\u201d for image ${imageId}. Ctrl+Z undoes it.`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) { fatal(error); return; }
      if (error instanceof ApiError && error.status === 409) {
        lastAction(`Not saved: ${error.message}. Showing the next image.`);
      } else if (error instanceof ApiError) {
        lastAction(`Not saved (${error.status}): ${error.message}`);
        state.busy = false;
        setControlsEnabled(true);
        return;
      } else {
        lastAction("Not saved: the server did not answer. Press the key again to retry.");
        state.busy = false;
        setControlsEnabled(true);
        return;
      }
    }
    await loadNext();
  }

  async function skip() {
    if (state.busy || !state.imageId || state.stopped) return;
    const imageId = state.imageId;
    state.busy = true;
    setControlsEnabled(false);
    try {
      await api("/api/skip", { method: "POST", body: { image_id: imageId } });
      lastAction(`Skipped image ${imageId}.`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) { fatal(error); return; }
      lastAction(`Skip failed: ${error.message}`);
      state.busy = false;
      setControlsEnabled(true);
      return;
    }
    await loadNext();
  }

  /* Undo this page's last label, then show that image again to relabel. */
  async function undo() {
    if (state.busy || state.undo.length === 0 || state.stopped) return;
    const entry = state.undo[state.undo.length - 1];
    clearTimeout(state.polling);
    state.polling = null;
    state.busy = true;
    setControlsEnabled(false);
    try {
      const result = await api("/api/undo", { method: "POST", body: { label_id: entry.label_id } });
      state.undo.pop();
      lastAction(`Undone \u201c${entry.label}\u201d for image ${result.image_id}. Label it again.`);
      const image = await loadImage(result.image_id);
      showMessage("");
      renderPrediction(null);
      showImage(image, result.image_id);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) { fatal(error); return; }
      lastAction(`Undo failed: ${error.message}`);
      if (!state.imageId) {           // back to waiting for the next batch
        await loadNext();
        return;
      }
    }
    state.busy = false;
    setControlsEnabled(true);
  }

  // -- keyboard ---------------------------------------------------------------
  document.addEventListener("keydown", (event) => {
    const typing = event.target instanceof HTMLTextAreaElement
      || event.target instanceof HTMLInputElement;
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      return;                                         // the note keeps its own keys
    }
    const key = event.key;
    if ((event.ctrlKey || event.metaKey) && !event.altKey && key.toLowerCase() === "z") {
      event.preventDefault();
      if (!event.repeat) undo();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const step = dragStep() * (event.shiftKey ? 20 : 5);
    let handled = true;
    if (/^[1-9]$/.test(key)) {
      if (!event.repeat) submitLabel(parseInt(key, 10) - 1);
    } else {
      switch (key.toLowerCase()) {
        case "s": if (!event.repeat) skip(); break;
        case "n": $("note").focus(); break;
        case "r": resetWindow(); break;
        case "a": autoWindow(); break;
        case "i": if (!event.repeat) toggleInvert(); break;
        case "arrowright": setWindow(state.center, state.width + step); break;
        case "arrowleft": setWindow(state.center, state.width - step); break;
        case "arrowdown": setWindow(state.center + step, state.width); break;
        case "arrowup": setWindow(state.center - step, state.width); break;
        default: handled = false;
      }
    }
    if (handled) event.preventDefault();
  });

  $("skip").addEventListener("click", skip);
  $("undo").addEventListener("click", undo);
  $("wl-reset").addEventListener("click", resetWindow);
  $("wl-auto").addEventListener("click", autoWindow);
  $("wl-invert").addEventListener("click", toggleInvert);

  // -- start ------------------------------------------------------------------
  async function start() {
    clearImage();
    setControlsEnabled(false);
    if (!SkalCxr.takeToken()) {
      state.stopped = true;
      showMessage(SkalCxr.NO_TOKEN, "error");
      return;
    }
    try {
      state.me = await api("/api/me");
    } catch (error) {
      fatal(error);
      return;
    }
    $("project").textContent = state.me.project;
    $("rater").textContent = state.me.rater;
    document.title = `${state.me.project}: labeling`;
    buildClassButtons(state.me.classes);
    await loadNext();
  }
  start();
})();
