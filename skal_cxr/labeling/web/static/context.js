/* Context for a reading: the film's DICOM header panel and the patient's related films.
 *
 * GET /api/images/{id}/header fills the "Film" panel with the project's tags
 * (view position, age, sex, study date, modality by default). On request
 * (C), GET /api/images/{id}/related lists the films of the same patient,
 * oldest to newest; they are shown side by side over the viewer, each in its
 * default window (the 8-bit PNG of /api/images/{id}), the current film framed.
 */
"use strict";

const SkalContext = (() => {
  function create({ api, box, list, related, onToggle = () => {} }) {
    let current = null;
    let urls = [];

    async function load(id) {
      current = id;
      list.replaceChildren();
      box.hidden = true;
      let tags = [];
      try {
        tags = (await api(`/api/images/${encodeURIComponent(id)}/header`)).tags || [];
      } catch (_) {
        return;                          // an older server, or the film is gone: no panel
      }
      if (current !== id) return;
      for (const t of tags) {
        const dt = document.createElement("dt");
        dt.textContent = t.name;
        const dd = document.createElement("dd");
        dd.textContent = t.value;
        list.append(dt, dd);
      }
      box.hidden = tags.length === 0;
    }

    function close() {
      related.hidden = true;
      related.replaceChildren();
      urls.forEach((u) => URL.revokeObjectURL(u));
      urls = [];
      onToggle(false);
    }

    async function open(id) {
      related.replaceChildren();
      related.hidden = false;
      onToggle(true);
      const note = document.createElement("p");
      note.className = "related-note";
      note.textContent = "Loading this patient\u2019s films\u2026";
      related.append(note);
      let films;
      try {
        films = (await api(`/api/images/${encodeURIComponent(id)}/related`)).films;
      } catch (error) {
        note.textContent = `Related films unavailable: ${error.message}`;
        return;
      }
      if (related.hidden) return;
      note.textContent = films.length > 1
        ? `${films.length} films of this patient, oldest to newest. C or Esc closes.`
        : "No other film of this patient in the project. C or Esc closes.";
      const row = document.createElement("div");
      row.className = "related-row";
      related.append(row);
      for (const f of films) {
        const fig = document.createElement("figure");
        fig.className = f.current ? "related-film current" : "related-film";
        fig.dataset.imageId = f.image_id;
        const img = document.createElement("img");
        img.alt = `film ${f.image_id}${f.date ? `, ${f.date}` : ""}`;
        const cap = document.createElement("figcaption");
        cap.textContent = `${f.date || "date unknown"}${f.current ? " \u00b7 this film" : ""}`;
        fig.append(img, cap);
        row.append(fig);
        api(`/api/images/${encodeURIComponent(f.image_id)}`, { raw: true })
          .then((r) => r.blob())
          .then((blob) => {
            if (related.hidden) return;
            const url = URL.createObjectURL(blob);
            urls.push(url);
            img.src = url;
          })
          .catch(() => { cap.textContent += " (not available)"; });
      }
    }

    function toggle(id) {
      if (!related.hidden) close();
      else if (id) open(id);
    }

    return { load, toggle, close, get open() { return !related.hidden; } };
  }

  return { create };
})();
