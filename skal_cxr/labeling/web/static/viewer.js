/* The image viewer of the rater page: window/level, zoom, pan, flip, magnifier.
 *
 * The stored pixel values (uint16) go through the window's lookup table into
 * "source" canvases: the full-resolution one and a pyramid of 2x2 box-averaged
 * levels (area averaging: no aliasing when a large film is shown small). The
 * visible canvas fills its box and draws the level nearest above the screen's
 * resolution through one affine transform (zoom, pan, flip), smoothed with the
 * browser's high-quality filter. Zoom and pan therefore cost one drawImage, and
 * window/level one pass over the pixels of the level on screen only (a
 * 4280x3520 film at fit: about a sixteenth of its pixels). The magnifier
 * (loupe) is a second, small canvas drawn from the full-resolution level.
 *
 * View geometry, in CSS pixels of the visible canvas:
 *   screen = centre + pan + flip * scale * (pixel - imageSize / 2)
 * so "scale" is CSS pixels per image pixel (1:1 = 1 / devicePixelRatio: one
 * image pixel per device pixel) and a flip turns the image about its centre.
 *
 * Window/level presets for CXR: radiographs have no Hounsfield units, so the
 * presets are fractions of the image's own value range, taken between its 1st
 * and 99th percentiles (robust to collimator edges and burned-in markers):
 * centre = p1 + c * (p99 - p1), width = w * (p99 - p1).
 */
"use strict";

const SkalViewer = (() => {
  const ZOOM_STEP = 1.25;
  const MIN_ZOOM = 0.05;      // of the fit scale
  const MAX_SCALE = 16;       // device pixels per image pixel
  const LOUPE_POWERS = [2, 3, 4];

  /* An 8-bit film (a JPEG or PNG export) is already windowed for display by
   * whoever wrote it: its presets are gentler changes of its stored window
   * (fractions of that window, not of the p1..p99 range of raw detector
   * values), so that none of them turns the bright half of the film white. */
  const PRESETS_8BIT = { lung: [0.45, 1.0], mediastinum: [0.62, 0.8], bone: [0.55, 0.7] };

  /* [key, name, centre fraction, width fraction] of the p1..p99 range. */
  const PRESETS = [
    ["file", "File", null, null],            // the file's VOI LUT / window
    ["lung", "Lung", 0.40, 0.90],            // wide: parenchyma, vessels, pleura
    ["mediastinum", "Mediastinum", 0.72, 0.55],  // high level: retrocardiac, lines, tubes
    ["bone", "Bone", 0.62, 0.30],            // narrow: cortex and trabecular edges
    ["full", "Full range", null, null],      // every stored value
  ];

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

  /* 2x2 box average of uint16 pixels (the last odd row / column is dropped). */
  function half(src, w, h) {
    const W = w >> 1, H = h >> 1;
    const out = new Uint16Array(W * H);
    for (let y = 0; y < H; y++) {
      const r0 = 2 * y * w, r1 = r0 + w, o = y * W;
      for (let x = 0; x < W; x++) {
        const i = 2 * x;
        out[o + x] = (src[r0 + i] + src[r0 + i + 1] + src[r1 + i] + src[r1 + i + 1] + 2) >> 2;
      }
    }
    return { data: out, width: W, height: H };
  }

  /* Pyramid levels: level k is the pixels averaged over 2^k x 2^k, down to ~256 px.
   * fx, fy: film pixels per level pixel (above 1 already at level 0 when the
   * server sent a display-size version of a larger film). */
  function levelsOf(data, width, height, fx, fy) {
    const levels = [{ data, width, height, fx, fy }];
    let last = levels[0];
    while (Math.min(last.width, last.height) >= 512) {
      const next = half(last.data, last.width, last.height);
      next.fx = last.fx * 2;
      next.fy = last.fy * 2;
      levels.push(next);
      last = next;
    }
    return levels;
  }

  /* An image record from uint16 pixels and the server's default window.
   * ``full`` ({width, height}) is the film's stored size when ``data`` is a
   * smaller display version of it: the view is laid out at the full size, and
   * the viewer asks for the full resolution (onNeedFull) once a zoom or the
   * loupe needs more pixels than were sent. */
  function makeImage(data, width, height, center, windowWidth, extraPresets = [], full = null) {
    const partial = Boolean(full && (full.width > width || full.height > height));
    const image = { data, sentWidth: width, sentHeight: height, partial, ...statsOf(data) };
    image.width = partial ? full.width : width;
    image.height = partial ? full.height : height;
    image.center0 = Number.isFinite(center) ? center : (image.min + image.max + 1) / 2;
    image.width0 = Number.isFinite(windowWidth) && windowWidth >= 1
      ? windowWidth : Math.max(1, image.max - image.min + 1);
    image.p1 = percentile(image, 0.01);
    image.p99 = percentile(image, 0.99);
    image.filePresets = extraPresets;     // more windows from the file, if the server sends them
    image.levels = levelsOf(data, width, height, image.width / width, image.height / height);
    image.bytes = image.levels.reduce((n, l) => n + l.data.byteLength, 0);
    return image;
  }

  function create({ wrap, canvas, loupe, onChange = () => {}, onNeedFull = () => {} }) {
    const ctx = canvas.getContext("2d", { alpha: false });
    const lctx = loupe.getContext("2d", { alpha: false });
    // per pyramid level, made when first drawn: {canvas, ctx, imageData, key, level};
    // kept on the image (image.sources), so that one prepared ahead is drawn at once
    let sources = [];
    let frame = null;

    const s = {
      image: null, id: null,
      center: 0, width: 1, invert: false, preset: "file",
      scale: 1, panX: 0, panY: 0, flipH: false, flipV: false, fit: true,
      panMode: false,
      loupeOn: false, loupePower: 3, pointer: null,   // pointer: CSS px in the canvas
      askedFull: false,   // the full resolution of a display-size film was asked for
      cssW: 1, cssH: 1, dpr: 1,
    };

    // -- geometry --------------------------------------------------------------
    function fitScale() {
      if (!s.image) return 1;
      return Math.min(s.cssW / s.image.width, s.cssH / s.image.height);
    }
    function toScreen(px, py) {
      const im = s.image;
      return [s.cssW / 2 + s.panX + (s.flipH ? -1 : 1) * s.scale * (px - im.width / 2),
              s.cssH / 2 + s.panY + (s.flipV ? -1 : 1) * s.scale * (py - im.height / 2)];
    }
    function toImage(x, y) {
      const im = s.image;
      return [im.width / 2 + (s.flipH ? -1 : 1) * (x - s.cssW / 2 - s.panX) / s.scale,
              im.height / 2 + (s.flipV ? -1 : 1) * (y - s.cssH / 2 - s.panY) / s.scale];
    }
    function clampScale(scale) {
      const lo = fitScale() * MIN_ZOOM, hi = MAX_SCALE / s.dpr;
      return Math.min(hi, Math.max(lo, scale));
    }

    /* A new size of the viewport: a fitted film is fitted again; a zoomed one keeps
     * its zoom relative to the fit and the point in view (the units of view(), so
     * that linked viewports still agree after one of them changed size). */
    function resize() {
      const w = Math.max(1, wrap.clientWidth), h = Math.max(1, wrap.clientHeight);
      const kept = s.fit ? null : view();
      s.dpr = window.devicePixelRatio || 1;
      s.cssW = w; s.cssH = h;
      canvas.style.width = `${w}px`;
      canvas.style.height = `${h}px`;
      canvas.width = Math.round(w * s.dpr);
      canvas.height = Math.round(h * s.dpr);
      if (kept) setView(kept);
      else if (s.fit) s.scale = fitScale();
      request(false);
    }
    new ResizeObserver(resize).observe(wrap);

    // -- drawing ---------------------------------------------------------------
    /* DICOM PS3.3 C.11.2.1.2 linear VOI function, as 32-bit RGBA, per stored value. */
    function lookupTable(image = s.image, center = s.center, width = s.width,
                         invert = s.invert) {
      const n = image.max - image.min + 1;
      const lut = new Uint32Array(n);
      const c = center - 0.5;
      const w = Math.max(1, width) - 1;
      for (let i = 0; i < n; i++) {
        const v = image.min + i;
        let g;
        if (w === 0) g = v > c ? 255 : 0;
        else if (v <= c - w / 2) g = 0;
        else if (v > c + w / 2) g = 255;
        else g = Math.round(((v - c) / w + 0.5) * 255);
        if (invert) g = 255 - g;
        lut[i] = 0xff000000 | (g << 16) | (g << 8) | g;   // RGBA bytes on little-endian
      }
      return lut;
    }
    let lut = null;
    const windowKey = (center, width, invert) => `${center}|${Math.max(1, width)}|${invert}`;

    /* A level's source canvas, made now (a canvas and its pixels: memory for the
     * levels drawn only). */
    function newSource(level) {
      const c = document.createElement("canvas");
      c.width = level.width;
      c.height = level.height;
      const cc = c.getContext("2d", { alpha: false });
      return { canvas: c, ctx: cc, imageData: cc.createImageData(level.width, level.height),
               key: null, level };
    }
    /* Draw a level's values through ``table`` into its source canvas. */
    function paintSource(src, table, min) {
      const out = new Uint32Array(src.imageData.data.buffer);
      const data = src.level.data;
      for (let i = 0; i < data.length; i++) out[i] = table[data[i] - min];
      src.ctx.putImageData(src.imageData, 0, 0);
    }
    /* The source canvas of a pyramid level, windowed with the current LUT. */
    function sourceOf(k) {
      if (!sources[k]) sources[k] = newSource(s.image.levels[k]);
      const src = sources[k];
      const key = windowKey(s.center, s.width, s.invert);
      if (src.key !== key) {
        if (lut === null) lut = lookupTable();
        paintSource(src, lut, s.image.min);
        src.key = key;
      }
      return src;
    }
    /* The coarsest level that still has at least one pixel per device pixel;
     * asks for the full resolution when even level 0 has fewer. */
    function levelFor(scale, ask = true, image = s.image) {
      const limit = 1 / (scale * s.dpr) + 1e-9;
      const levels = image ? image.levels : [];
      let k = 0;
      while (k + 1 < levels.length && levels[k + 1].fx <= limit) k += 1;
      if (ask && image && image.partial && levels[0].fx > limit && !s.askedFull) {
        s.askedFull = true;
        const id = s.id;
        setTimeout(() => onNeedFull(id), 0);
      }
      return k;
    }
    function drawSource(c, k) {
      const src = sourceOf(k);
      const l = src.level;
      c.drawImage(src.canvas, 0, 0, l.width, l.height, 0, 0, l.width * l.fx, l.height * l.fy);
    }

    function setTransform(c, scale, ox, oy, dpr) {
      const im = s.image;
      const fx = s.flipH ? -1 : 1, fy = s.flipV ? -1 : 1;
      c.setTransform(dpr * fx * scale, 0, 0, dpr * fy * scale,
                     dpr * (ox - fx * scale * im.width / 2),
                     dpr * (oy - fy * scale * im.height / 2));
    }

    function compose() {
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      if (!s.image) return;
      setTransform(ctx, s.scale, s.cssW / 2 + s.panX, s.cssH / 2 + s.panY, s.dpr);
      ctx.imageSmoothingEnabled = true;
      ctx.imageSmoothingQuality = "high";
      drawSource(ctx, levelFor(s.scale));
    }

    function drawLoupe() {
      const p = s.pointer;
      const show = s.loupeOn && s.image && p !== null;
      loupe.hidden = !show;
      if (!show) return;
      const size = loupe.clientWidth || 240;
      const dpr = s.dpr;
      if (loupe.width !== Math.round(size * dpr)) {
        loupe.width = Math.round(size * dpr);
        loupe.height = Math.round(size * dpr);
      }
      loupe.style.left = `${p[0] - size / 2}px`;
      loupe.style.top = `${p[1] - size / 2}px`;
      const scale = loupeScale();
      const [ix, iy] = toImage(p[0], p[1]);
      // the image point under the pointer sits at the loupe's centre
      const fx = s.flipH ? -1 : 1, fy = s.flipV ? -1 : 1;
      const ox = size / 2 - fx * scale * (ix - s.image.width / 2);
      const oy = size / 2 - fy * scale * (iy - s.image.height / 2);
      lctx.setTransform(1, 0, 0, 1, 0, 0);
      lctx.fillStyle = "#000";
      lctx.fillRect(0, 0, loupe.width, loupe.height);
      setTransform(lctx, scale, ox, oy, dpr);
      // magnified past the source's own pixels: show them as they are
      lctx.imageSmoothingEnabled = scale * dpr < 2;
      lctx.imageSmoothingQuality = "high";
      drawSource(lctx, levelFor(scale));
    }
    function loupeScale() { return s.scale * s.loupePower; }

    function frameNow() {
      frame = null;
      compose();
      drawLoupe();
      onChange(api);
    }
    function request(windowChanged) {
      if (windowChanged) lut = null;   // the sources redraw when their key differs
      if (frame === null) frame = requestAnimationFrame(frameNow);
    }

    // -- public operations -----------------------------------------------------
    function makeSources(image) {
      if (s.image && s.image !== image) s.image.sources = null;   // its canvases go
      if (!image.sources || image.sources.length !== image.levels.length) {
        image.sources = image.levels.map(() => null);
      }
      sources = image.sources;
      lut = null;
    }
    /* Window a film ahead of showing it (a prefetched one): the level its fit
     * view draws, through its default window, so that show() only draws it. */
    function prepare(image) {
      if (!image || image === s.image || !image.levels) return;
      const scale = Math.min(s.cssW / image.width, s.cssH / image.height);
      const k = levelFor(scale, false, image);
      if (!image.sources || image.sources.length !== image.levels.length) {
        image.sources = image.levels.map(() => null);
      }
      const key = windowKey(image.center0, image.width0, false);
      const src = image.sources[k] || newSource(image.levels[k]);
      if (src.key !== key) {
        paintSource(src, lookupTable(image, image.center0, image.width0, false), image.min);
        src.key = key;
      }
      image.sources[k] = src;
    }
    function show(image, id) {
      makeSources(image);
      s.image = image;
      s.id = id;
      s.askedFull = false;
      s.flipH = false; s.flipV = false; s.invert = false;
      s.fit = true; s.panX = 0; s.panY = 0; s.scale = fitScale();
      s.center = image.center0; s.width = image.width0; s.preset = "file";
      canvas.dataset.imageId = id;
      canvas.setAttribute("aria-label",
        `chest X-ray ${id}, ${image.width} by ${image.height} pixels`);
      frameNow();          // drawn before the page says it is ready
    }
    /* The full-resolution pixels of the film on screen: same view, same window. */
    function upgrade(image, id) {
      if (id !== s.id || !s.image || image.width !== s.image.width
          || image.height !== s.image.height) return false;
      makeSources(image);
      s.image = image;
      request(true);
      return true;
    }
    function clear() {
      if (s.image) s.image.sources = null;
      s.image = null; s.id = null; sources = [];
      delete canvas.dataset.imageId;
      request(false);
    }
    function setWindow(center, width, preset = null) {
      s.center = center;
      s.width = Math.max(1, width);
      s.preset = preset;
      request(true);
    }
    function preset(key) {
      const im = s.image;
      if (!im) return;
      const range = Math.max(1, im.p99 - im.p1);
      const files = im.filePresets || [];
      if (key === "file" && files.length > 1 && s.preset && s.preset.startsWith("file")) {
        // again: the file's next window (DX files often carry normal, harder, softer)
        const k = ((s.preset === "file" ? 0 : parseInt(s.preset.slice(4), 10)) + 1)
          % files.length;
        setWindow(files[k].center, files[k].width, k === 0 ? "file" : `file${k}`);
      } else if (key === "file") setWindow(im.center0, im.width0, "file");
      else if (key === "full") setWindow((im.min + im.max + 1) / 2, im.max - im.min + 1, "full");
      else if (key === "auto") {
        const lo = percentile(im, 0.02), hi = percentile(im, 0.98);
        setWindow((lo + hi + 1) / 2, Math.max(1, hi - lo + 1), "auto");
      } else if (typeof key === "number") {
        const p = im.filePresets[key];
        if (p) setWindow(p.center, p.width, `file${key}`);
      } else if (im.bits === 8 && PRESETS_8BIT[key]) {
        const [c, w] = PRESETS_8BIT[key];
        const low = im.center0 - im.width0 / 2;
        setWindow(low + c * im.width0, w * im.width0, key);
      } else {
        const row = PRESETS.find((r) => r[0] === key);
        if (row) setWindow(im.p1 + row[2] * range, row[3] * range, key);
      }
    }
    function toggleInvert() { s.invert = !s.invert; request(true); }
    /* One screen pixel of drag moves the window by this many pixel values. */
    function dragStep() {
      const im = s.image;
      return im ? Math.max(im.max - im.min + 1, 2) / 400 : 1;
    }

    function zoomAt(factor, x = s.cssW / 2, y = s.cssH / 2) {
      if (!s.image) return;
      const scale = clampScale(s.scale * factor);
      const k = scale / s.scale;
      s.panX = x - s.cssW / 2 - k * (x - s.cssW / 2 - s.panX);
      s.panY = y - s.cssH / 2 - k * (y - s.cssH / 2 - s.panY);
      s.scale = scale;
      s.fit = false;
      request(false);
    }
    function fit() { s.fit = true; s.scale = fitScale(); s.panX = 0; s.panY = 0; request(false); }
    /* One image pixel per device pixel, keeping the point at the screen centre. */
    function oneToOne() { zoomAt((1 / s.dpr) / s.scale); }
    function panBy(dx, dy) { s.panX += dx; s.panY += dy; s.fit = false; request(false); }
    function flip(axis) {
      if (axis === "h") s.flipH = !s.flipH; else s.flipV = !s.flipV;
      request(false);
    }
    function resetView() {
      s.flipH = false; s.flipV = false; s.invert = false;
      fit();
      preset("file");
    }
    function setLoupe(on) { s.loupeOn = on; request(false); }
    function loupePower(step) {
      const i = LOUPE_POWERS.indexOf(s.loupePower);
      s.loupePower = LOUPE_POWERS[Math.max(0, Math.min(LOUPE_POWERS.length - 1, i + step))];
      request(false);
    }

    // -- pointer: plain drag = window/level, Shift/Ctrl/middle drag or pan mode = pan,
    //    right drag = zoom, wheel = zoom about the pointer, two fingers = pinch ------
    const pointers = new Map();
    let gesture = null;
    function local(event) {
      const r = canvas.getBoundingClientRect();
      return [event.clientX - r.left, event.clientY - r.top];
    }
    canvas.addEventListener("contextmenu", (event) => event.preventDefault());
    canvas.addEventListener("pointerdown", (event) => {
      if (!s.image) return;
      canvas.setPointerCapture(event.pointerId);
      pointers.set(event.pointerId, local(event));
      const p = local(event);
      if (pointers.size === 2) {
        const [a, b] = [...pointers.values()];
        gesture = { kind: "pinch", dist: Math.hypot(a[0] - b[0], a[1] - b[1]),
                    mid: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2] };
      } else if (event.button === 1 || (event.button === 0
                 && (s.panMode || event.shiftKey || event.ctrlKey || event.metaKey))) {
        gesture = { kind: "pan", last: p };
      } else if (event.button === 2) {
        gesture = { kind: "zoom", last: p, at: p };
      } else if (event.button === 0) {
        gesture = { kind: "window", start: p, center: s.center, width: s.width };
      }
      if (gesture) canvas.classList.add(`dragging-${gesture.kind}`);
      event.preventDefault();
    });
    canvas.addEventListener("pointermove", (event) => {
      const p = local(event);
      s.pointer = p;
      if (pointers.has(event.pointerId)) pointers.set(event.pointerId, p);
      if (!gesture) { if (s.loupeOn) request(false); return; }
      if (gesture.kind === "pan") {
        panBy(p[0] - gesture.last[0], p[1] - gesture.last[1]);
        gesture.last = p;
      } else if (gesture.kind === "zoom") {
        zoomAt(Math.pow(1.01, gesture.last[1] - p[1]), gesture.at[0], gesture.at[1]);
        gesture.last = p;
      } else if (gesture.kind === "window") {
        const step = dragStep();
        setWindow(gesture.center + (p[1] - gesture.start[1]) * step,
                  gesture.width + (p[0] - gesture.start[0]) * step);
      } else if (gesture.kind === "pinch" && pointers.size === 2) {
        const [a, b] = [...pointers.values()];
        const dist = Math.hypot(a[0] - b[0], a[1] - b[1]);
        const mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
        panBy(mid[0] - gesture.mid[0], mid[1] - gesture.mid[1]);
        if (gesture.dist > 0) zoomAt(dist / gesture.dist, mid[0], mid[1]);
        gesture.dist = dist; gesture.mid = mid;
      }
    });
    function endPointer(event) {
      pointers.delete(event.pointerId);
      if (gesture) canvas.classList.remove(`dragging-${gesture.kind}`);
      gesture = null;
    }
    canvas.addEventListener("pointerup", endPointer);
    canvas.addEventListener("pointercancel", endPointer);
    canvas.addEventListener("pointerleave", () => {
      if (!gesture) { s.pointer = null; request(false); }
    });
    canvas.addEventListener("wheel", (event) => {
      if (!s.image) return;
      event.preventDefault();
      const unit = event.deltaMode === 1 ? 33 : event.deltaMode === 2 ? 400 : 1;
      const p = local(event);
      zoomAt(Math.pow(1.0015, -event.deltaY * unit), p[0], p[1]);
    }, { passive: false });
    canvas.addEventListener("dblclick", () => preset("file"));

    // -- state for the page and its tests ---------------------------------------
    function state() {
      const im = s.image;
      const r = canvas.getBoundingClientRect();
      let drawn = null;
      if (im) {
        const [x0, y0] = toScreen(0, 0), [x1, y1] = toScreen(im.width, im.height);
        const left = Math.max(0, Math.min(x0, x1)), right = Math.min(s.cssW, Math.max(x0, x1));
        const top = Math.max(0, Math.min(y0, y1)), bottom = Math.min(s.cssH, Math.max(y0, y1));
        drawn = { x: r.left + left, y: r.top + top,
                  width: Math.max(0, right - left), height: Math.max(0, bottom - top) };
      }
      return {
        imageId: s.id, imageWidth: im ? im.width : null, imageHeight: im ? im.height : null,
        partial: im ? im.partial : null, sentWidth: im ? im.sentWidth : null,
        scale: s.scale, fitScale: fitScale(), oneToOne: 1 / s.dpr, fit: s.fit,
        panX: s.panX, panY: s.panY, flipH: s.flipH, flipV: s.flipV,
        center: s.center, width: s.width, invert: s.invert, preset: s.preset,
        presetName: presetName(), filePresets: im ? (im.filePresets || []).length : 0,
        panMode: s.panMode, dpr: s.dpr,
        canvas: { x: r.left, y: r.top, width: s.cssW, height: s.cssH },
        drawn,
        level: s.image ? levelFor(s.scale, false) : null,
        // the full film was asked for and is not drawn yet: the screen shows a copy
        loadingFull: Boolean(im && im.partial && s.askedFull),
        // screen pixels per pixel of what is drawn (the copy's while it is partial)
        shownScale: im ? s.scale * s.dpr * (im.width / im.sentWidth) : null,
        loupe: { on: s.loupeOn, visible: !loupe.hidden, power: s.loupePower,
                 scale: loupeScale(), pointer: s.pointer },
      };
    }
    /* The name of the window on screen: a file window's explanation, else the preset's. */
    function presetName() {
      const files = (s.image && s.image.filePresets) || [];
      if (!s.preset || !s.preset.startsWith("file") || files.length === 0) return null;
      const k = s.preset === "file" ? 0 : parseInt(s.preset.slice(4), 10);
      return files[k] ? files[k].name : null;
    }

    /* Size, min and max grey of the full-resolution source canvas (tests). */
    function sourceStats() {
      if (!s.image) return null;
      const src = sourceOf(0);
      const d = src.ctx.getImageData(0, 0, src.canvas.width, src.canvas.height).data;
      let lo = 255, hi = 0, white = 0;
      for (let i = 0; i < d.length; i += 4) {
        lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]);
        if (d[i] === 255) white += 1;
      }
      return { width: src.canvas.width, height: src.canvas.height, min: lo, max: hi,
               white: white / Math.max(1, d.length / 4), bits: s.image.bits || 16,
               levels: s.image.levels.length, level: levelFor(s.scale, false) };
    }

    // -- linked viewports (current and prior side by side) -----------------------
    /* The view in units that mean the same on another film: zoom as a multiple
     * of the fit scale, pan as a fraction of the drawn image's size. */
    function view() {
      const im = s.image;
      if (!im) return null;
      return { zoom: s.scale / fitScale(), px: s.panX / (s.scale * im.width),
               py: s.panY / (s.scale * im.height), flipH: s.flipH, flipV: s.flipV, fit: s.fit };
    }
    function setView(v) {
      const im = s.image;
      if (!im || !v) return;
      s.flipH = v.flipH; s.flipV = v.flipV; s.fit = v.fit;
      s.scale = v.fit ? fitScale() : clampScale(fitScale() * v.zoom);
      s.panX = v.fit ? 0 : v.px * s.scale * im.width;
      s.panY = v.fit ? 0 : v.py * s.scale * im.height;
      request(false);
    }
    /* The window as fractions of the film's p1..p99 range (the presets' units),
     * so that two films of different bit depth or exposure get the same look. */
    function windowNorm() {
      const im = s.image;
      if (!im) return null;
      const range = Math.max(1, im.p99 - im.p1);
      return { c: (s.center - im.p1) / range, w: s.width / range, invert: s.invert,
               preset: s.preset };
    }
    function setWindowNorm(n) {
      const im = s.image;
      if (!im || !n) return;
      const range = Math.max(1, im.p99 - im.p1);
      s.invert = n.invert;
      // a named preset is the same preset on the other film (its own file window)
      if (n.preset && !String(n.preset).startsWith("file")) preset(n.preset);
      else if (n.preset === "file") preset("file");
      else setWindow(im.p1 + n.c * range, n.w * range, null);
    }

    const api = {
      show, upgrade, prepare, clear, setWindow, preset, toggleInvert, dragStep, zoomAt, fit, oneToOne,
      panBy, flip, resetView, setLoupe, loupePower, state, sourceStats, toScreen, toImage,
      view, setView, windowNorm, setWindowNorm,
      get image() { return s.image; },
      get center() { return s.center; },
      get width() { return s.width; },
      get invert() { return s.invert; },
      get loupeOn() { return s.loupeOn; },
      get panMode() { return s.panMode; },
      set panMode(on) { s.panMode = Boolean(on); request(false); },
    };
    resize();
    return api;
  }

  const PRESET_NAMES = Object.fromEntries(PRESETS.map((r) => [r[0], r[1]]));
  PRESET_NAMES.auto = "Auto";

  /* The overlay's two lines for a viewer state: window/level, and the zoom.
   * While the full film is on its way the zoom line gives the scale of what
   * is drawn (the display-size copy) and says that the full film is loading. */
  function overlayText(st) {
    const name = st.presetName || PRESET_NAMES[st.preset] || st.preset;
    const preset = st.preset ? ` (${name})` : "";
    const wl = `W ${Math.round(st.width)}  L ${Math.round(st.center)}${preset}`
      + (st.invert ? "  inverted" : "");
    const flips = (st.flipH ? "  flipped \u2194" : "") + (st.flipV ? "  flipped \u2195" : "");
    const zoom = st.loadingFull
      ? `${Math.round(st.shownScale * 100)} % of a ${st.sentWidth}-px copy, `
        + "loading the full film\u2026"
      : `${Math.round(st.scale * st.dpr * 100)} %${st.fit ? " (fit)" : ""}`;
    return { wl, zoom: zoom + flips + (st.loupe.on ? `  loupe ${st.loupe.power}\u00d7` : "") };
  }

  return { create, makeImage, overlayText, PRESETS, LOUPE_POWERS };
})();
