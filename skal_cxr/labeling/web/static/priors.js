/* Current and prior side by side: the 2-up hanging protocol of the rater page.
 *
 * When the film on screen has other films of the same patient (GET
 * /api/images/{id}/related), the viewer splits in two: the current film on
 * the left, the most recent prior (the newest film dated before it; else the
 * newest other film) on the right. Each side is a SkalViewer of its own
 * (window/level, zoom, pan, flip, loupe) and fetches its film like the
 * current one: display-size first, the full resolution when a zoom needs it.
 *
 * Linked (the default), a window/level, zoom, pan or flip on either side is
 * applied to the other in units that mean the same on both films: zoom as a
 * multiple of the fit scale, pan as a fraction of the image, the window as
 * fractions of each film's 1st..99th percentile range (a named preset is
 * that preset on each film). Unlinked, each side keeps its own view.
 */
"use strict";

const SkalPriors = (() => {
  function create({ api, current, cache, els, overlayText, onLayout = () => {} }) {
    const st = {
      on: true,            // the 2-up layout is wanted (D turns it off and on)
      linked: true,
      films: [],           // the priors of the current film, first = shown first
      index: 0,
      currentId: null,
      priorId: null,
      active: "current",
      loading: false,
    };
    let syncing = false;
    const seen = new Map();

    const prior = SkalViewer.create({
      wrap: els.wrap, canvas: els.canvas, loupe: els.loupe,
      onChange: (v) => { render(v); changed(v); },
      onNeedFull: (id) => {
        cache.get(id, { full: true }).then((image) => {
          if (st.priorId === id) prior.upgrade(image, id);
        }, () => {});
      },
    });

    function render(v) {
      const s = v.state();
      const text = s.imageId === null ? { wl: "", zoom: "" } : overlayText(s);
      els.wl.textContent = text.wl;
      els.zoom.textContent = text.zoom;
      els.loading.hidden = !(s.loadingFull || st.loading);
    }

    // -- linking ------------------------------------------------------------------
    const round = (x) => (typeof x === "number" ? Math.round(x * 1e6) / 1e6 : x);
    const key = (o) => JSON.stringify(o, (_, x) => round(x));
    function snapshot(v) { return { view: key(v.view()), win: key(v.windowNorm()) }; }

    /* A viewer drew a new state: apply what changed to the other one when linked. */
    function changed(v) {
      if (syncing || !v.image) return;
      const was = seen.get(v);
      const now = snapshot(v);
      seen.set(v, now);
      if (!was || !shown() || !st.linked || !current.image || !prior.image) return;
      const other = v === current ? prior : current;
      syncing = true;
      try {
        if (now.view !== was.view) other.setView(v.view());
        if (now.win !== was.win) other.setWindowNorm(v.windowNorm());
      } finally {
        syncing = false;
      }
      seen.set(other, snapshot(other));
    }
    /* The prior takes the current film's view and window (on linking, on a new prior). */
    function align() {
      if (!current.image || !prior.image) return;
      syncing = true;
      try {
        prior.setView(current.view());
        prior.setWindowNorm(current.windowNorm());
      } finally {
        syncing = false;
      }
      seen.set(prior, snapshot(prior));
      seen.set(current, snapshot(current));
    }

    // -- layout -------------------------------------------------------------------
    function shown() { return st.on && st.films.length > 0; }
    function layout() {
      const two = shown();
      els.wrap.hidden = !two;
      els.box.classList.toggle("two-up", two);
      if (!two) setActive("current");
      els.linkButton.setAttribute("aria-pressed", String(st.linked));
      els.toggleButton.setAttribute("aria-pressed", String(two));
      els.toggleButton.disabled = st.films.length === 0;
      els.tools.hidden = st.films.length === 0;   // no priors: no room taken
      els.nextButton.disabled = !two || st.films.length < 2;
      els.linkButton.disabled = !two;
      onLayout(two);
    }
    function setActive(which) {
      st.active = which === "prior" && shown() ? "prior" : "current";
      els.box.dataset.active = st.active;
    }
    els.wrap.addEventListener("pointerdown", () => setActive("prior"));
    els.currentWrap.addEventListener("pointerdown", () => setActive("current"));

    function caption(f) {
      const when = f.date || "date unknown";
      return `${f.kind} \u00b7 ${when} \u00b7 image ${f.image_id}`
        + (st.films.length > 1 ? ` (${st.index + 1} of ${st.films.length})` : "");
    }

    async function showPrior() {
      const f = st.films[st.index];
      if (!f || !shown()) { prior.clear(); return; }
      const id = f.image_id;
      st.priorId = id;
      els.caption.textContent = caption(f);
      st.loading = true;
      render(prior);
      let image;
      try {
        image = await cache.get(id, { prefetch: true });
      } catch (_) {
        if (st.priorId === id) {
          st.loading = false;
          els.caption.textContent = `${caption(f)} (not available)`;
          prior.clear();
        }
        return;
      }
      if (st.priorId !== id) return;
      st.loading = false;
      syncing = true;
      try {
        prior.show(image, id);
      } finally {
        syncing = false;
      }
      if (st.linked) align();
      else seen.set(prior, snapshot(prior));
      render(prior);
    }

    /* The priors of a film: dated before it, newest first; then the other films. */
    function order(films, id) {
      const me = films.find((f) => f.current) || { date: null };
      const others = films.filter((f) => f.image_id !== id && !f.current);
      const before = others.filter((f) => me.date && f.date && f.date < me.date).reverse();
      const rest = others.filter((f) => !before.includes(f)).reverse();
      return [...before.map((f) => ({ ...f, kind: "prior" })),
              ...rest.map((f) => ({ ...f, kind: f.date && me.date ? "later film" : "other film" }))];
    }

    async function load(id) {
      // the layout stays until the answer (no flicker between two films with priors);
      // the previous film's prior goes at once: never a prior of another patient
      st.currentId = id;
      st.index = 0;
      st.priorId = null;
      prior.clear();
      els.caption.textContent = "";
      let films = [];
      try {
        films = (await api(`/api/images/${encodeURIComponent(id)}/related`)).films || [];
      } catch (_) {
        films = [];                     // an older server, or no access: one viewport
      }
      if (st.currentId !== id) return;
      st.films = order(films, id);
      layout();
      seen.set(current, snapshot(current));
      await showPrior();
    }
    function clear() {
      st.currentId = null;
      st.films = [];
      st.priorId = null;
      prior.clear();
      layout();
    }

    function toggle() {
      st.on = !st.on;
      layout();
      if (shown() && st.priorId === null) showPrior();
      else if (shown() && st.linked) align();
    }
    function cycle(step = 1) {
      if (!shown() || st.films.length < 2 || st.priorId === null) return;
      st.index = (st.index + step + st.films.length) % st.films.length;
      showPrior();
    }
    function setLinked(on) {
      st.linked = Boolean(on);
      layout();
      if (st.linked && shown()) align();
    }

    /* The viewer the view keys act on: the one last clicked. */
    function target() { return st.active === "prior" && shown() && prior.image ? prior : current; }

    function state() {
      return {
        shown: shown(), linked: st.linked, active: st.active, loading: st.loading,
        priorId: st.priorId, films: st.films.map((f) => f.image_id), index: st.index,
        viewer: prior.state(),
      };
    }

    layout();
    return { load, clear, toggle, cycle, setLinked, target, state, changed, setActive,
             viewer: prior, get linked() { return st.linked; } };
  }

  return { create };
})();
