/* Zone scores (Brixia, RALE): the zones drawn over the film, keys to score them.
 *
 * Only in a project created with a scoring scheme (GET /api/scoring answers
 * it; null otherwise, and nothing here shows). The zones are boxes in the
 * image's coordinates (fractions of its width and height, the patient's
 * right on the viewer's left), drawn over the canvas wherever the viewer
 * puts the image (zoom, pan, flips). One item is selected at a time (a
 * zone's score, or for RALE a quadrant's extent then its density): a digit
 * sets it and selects the next, Tab / Shift+Tab (or a click on a zone's
 * badge) select, Backspace clears, Enter saves. The panel shows each zone's
 * score, the total and the class the total falls in (the project's bins,
 * np.digitize as the server does); the server derives the class again.
 */
"use strict";

const SkalZones = (() => {
  function create({ api, wrap, panel, viewer, classes, active, submit }) {
    const st = { scheme: null, values: [], selected: 0 };

    function nItems() { return st.scheme.zones.length * st.scheme.components.length; }
    function zoneScore(z) {
      const k = st.scheme.components.length;
      let product = 1;
      for (let c = 0; c < k; c++) {
        const v = st.values[z * k + c];
        if (v === null) return null;
        product *= v;
      }
      return product;
    }
    function total() {
      let sum = 0;
      for (let z = 0; z < st.scheme.zones.length; z++) {
        const v = zoneScore(z);
        if (v === null) return null;
        sum += v;
      }
      return sum;
    }
    function classOf(t) {
      let i = 0;
      while (i < st.scheme.bins.length && t >= st.scheme.bins[i]) i++;
      return classes()[i];
    }

    // -- the overlay over the film ----------------------------------------------
    const layer = document.createElement("div");
    layer.className = "zones";
    layer.id = "zones";
    layer.hidden = true;
    layer.setAttribute("aria-hidden", "true");
    wrap.append(layer);

    function place() {
      if (!st.scheme) return;
      const v = viewer.state();
      layer.hidden = v.imageId === null || !active(true);
      if (layer.hidden) return;
      st.scheme.zones.forEach((zone, z) => {
        const el = layer.children[z];
        const [l, t, r, b] = zone.box;
        const [x0, y0] = viewer.toScreen(l * v.imageWidth, t * v.imageHeight);
        const [x1, y1] = viewer.toScreen(r * v.imageWidth, b * v.imageHeight);
        Object.assign(el.style, {
          left: `${Math.min(x0, x1)}px`, top: `${Math.min(y0, y1)}px`,
          width: `${Math.abs(x1 - x0)}px`, height: `${Math.abs(y1 - y0)}px`,
        });
      });
    }

    // -- the panel ----------------------------------------------------------------
    function render() {
      if (!st.scheme) return;
      const k = st.scheme.components.length;
      const selectedZone = Math.floor(st.selected / k);
      st.scheme.zones.forEach((zone, z) => {
        const el = layer.children[z];
        el.classList.toggle("selected", z === selectedZone);
        const score = zoneScore(z);
        el.querySelector(".zone-score").textContent = `${zone.key} ${score === null ? "\u2013" : score}`;
        const row = panel.querySelector(`tr[data-zone="${z}"]`);
        row.classList.toggle("selected", z === selectedZone);
        st.scheme.components.forEach((comp, c) => {
          const cell = row.querySelector(`td[data-item="${z * k + c}"]`);
          const v = st.values[z * k + c];
          cell.textContent = v === null ? "\u2013" : String(v);
          cell.classList.toggle("selected", z * k + c === st.selected);
        });
        if (k > 1) row.querySelector(".zone-product").textContent = score === null ? "" : `= ${score}`;
      });
      const t = total();
      panel.querySelector("#zone-total").textContent = t === null
        ? `\u2013 of ${st.scheme.max_total}` : `${t} of ${st.scheme.max_total}`;
      panel.querySelector("#zone-class").textContent = t === null ? "\u2013" : classOf(t);
      panel.querySelector("#zone-save").disabled = t === null || !active();
    }

    function build(scheme) {
      st.scheme = scheme;
      layer.replaceChildren();
      for (const zone of scheme.zones) {
        const el = document.createElement("div");
        el.className = "zone";
        el.title = zone.meaning;
        const badge = document.createElement("span");
        badge.className = "zone-score";
        el.append(badge);
        layer.append(el);
      }
      panel.hidden = false;
      panel.querySelector("#zone-title").textContent = scheme.title;
      const k = scheme.components.length;
      const head = panel.querySelector("#zone-head");
      head.replaceChildren();
      for (const name of ["zone", ...scheme.components.map(
        (c) => `${c.name} ${c.low}\u2013${c.high}`)]) {
        const th = document.createElement("th");
        th.textContent = name;
        head.append(th);
      }
      const body = panel.querySelector("#zone-rows");
      body.replaceChildren();
      scheme.zones.forEach((zone, z) => {
        const tr = document.createElement("tr");
        tr.dataset.zone = String(z);
        const name = document.createElement("th");
        name.scope = "row";
        name.textContent = zone.key;
        name.title = zone.meaning;
        tr.append(name);
        scheme.components.forEach((_, c) => {
          const td = document.createElement("td");
          td.dataset.item = String(z * k + c);
          td.className = "num";
          td.addEventListener("click", () => select(z * k + c));
          tr.append(td);
        });
        if (k > 1) {
          const product = document.createElement("td");
          product.className = "zone-product num";
          tr.append(product);
        }
        body.append(tr);
      });
      [...layer.children].forEach((el, z) => {
        el.querySelector(".zone-score").addEventListener("click", () => select(z * k));
      });
      reset();
    }

    function reset() {
      if (!st.scheme) return;
      st.values = new Array(nItems()).fill(null);
      st.selected = 0;
      render();
      place();
    }

    function select(i) {
      st.selected = (i + nItems()) % nItems();
      render();
    }

    function set(value) {
      const comp = st.scheme.components[st.selected % st.scheme.components.length];
      if (value < comp.low || value > comp.high) return false;
      st.values[st.selected] = value;
      if (st.selected < nItems() - 1) st.selected += 1;
      render();
      return true;
    }

    function save() {
      if (total() === null || !active()) return;
      submit(st.values.slice());
    }

    /* Keys of the scored page, before the page's own (a digit is a score, not a class). */
    document.addEventListener("keydown", (event) => {
      if (!st.scheme || !active()) return;
      const target = event.target;
      if (target instanceof HTMLTextAreaElement || target instanceof HTMLInputElement) return;
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      let handled = true;
      if (/^[0-9]$/.test(event.key) && !event.shiftKey) {
        if (!event.repeat) set(parseInt(event.key, 10));
      } else if (event.key === "Tab") {
        select(st.selected + (event.shiftKey ? -1 : 1));
      } else if (event.key === "Backspace") {
        st.values[st.selected] = null;
        render();
      } else if (event.key === "Enter") {
        if (!event.repeat) save();
      } else {
        handled = false;
      }
      if (handled) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    }, true);
    panel.querySelector("#zone-save").addEventListener("click", save);

    async function start() {
      const scheme = await api("/api/scoring");
      if (scheme) build(scheme);
      return scheme;
    }

    return {
      start, reset, place, render,
      get on() { return st.scheme !== null; },
      state: () => ({ values: st.values.slice(), selected: st.selected, total: st.scheme ? total() : null }),
    };
  }
  return { create };
})();
