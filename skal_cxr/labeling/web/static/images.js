/* The rater page's images: fetched from the API, decoded, kept in memory by id.
 *
 * A film comes as a 16-bit PNG (display-size first, the full resolution when
 * asked for) where the server offers it, else as raw little-endian uint16,
 * else as the 8-bit PNG. An 8-bit film comes as an 8-bit PNG, or as its own
 * file when that is a greyscale PNG or JPEG (fewer bytes than any re-encoding). The API sends images "no-store", so the browser's
 * HTTP cache never holds them: this cache does, keyed by image id, most
 * recently used last, within a byte budget (the two newest always stay).
 */
"use strict";

const SkalImages = (() => {
  function create({ api, ApiError, displaySize, maxBytes = 256 * 1024 * 1024 }) {
    const isNetworkError = (error) => !(error instanceof ApiError);

    /* The film's pixels: a 16-bit PNG (display-size unless ``full``) where the
     * server offers it, else the raw little-endian uint16 of the stored size. */
    async function fetchPixels(id, full) {
      const query = full ? "?format=png" : `?format=png&max_size=${displaySize()}`;
      const response = await api(`/api/images/${encodeURIComponent(id)}/pixels${query}`,
                                  { raw: true });
      const header = (name) => parseInt(response.headers.get(name), 10);
      const buffer = await response.arrayBuffer();
      const type = response.headers.get("Content-Type") || "";
      let data, width, height, bits = 16;
      if (type.startsWith("image/jpeg")) {            // an 8-bit source sent as it is
        ({ data, width, height } = await decodeBitmap(new Blob([buffer], { type })));
        bits = 8;
      } else if (type.startsWith("image/png")) {
        try {
          let bitDepth;
          ({ data, width, height, bitDepth } = await SkalPng.decode(buffer));
          bits = bitDepth;
        } catch (error) {     // a source PNG this decoder does not read: the browser's
          if (header("X-Bits-Stored") !== 8) throw error;
          ({ data, width, height } = await decodeBitmap(new Blob([buffer], { type })));
          bits = 8;
        }
      } else {
        width = header("X-Image-Width");
        height = header("X-Image-Height");
        if (!(width > 0 && height > 0) || buffer.byteLength !== width * height * 2) {
          throw new Error(`image ${id}: ${buffer.byteLength} bytes for ${width}x${height} pixels`);
        }
        if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) {
          data = new Uint16Array(buffer);                 // little-endian host
        } else {
          const view = new DataView(buffer);
          data = new Uint16Array(width * height);
          for (let i = 0; i < data.length; i++) data[i] = view.getUint16(2 * i, true);
        }
      }
      const fullW = header("X-Full-Width"), fullH = header("X-Full-Height");
      const fullSize = fullW > 0 && fullH > 0 ? { width: fullW, height: fullH } : null;
      let presets = [];
      try {   // more windows of the file (several WindowCenter/Width pairs), when sent
        presets = JSON.parse(response.headers.get("X-Window-Presets") || "[]");
      } catch (_) { presets = []; }
      const image = SkalViewer.makeImage(data, width, height,
        parseFloat(response.headers.get("X-Window-Center")),
        parseFloat(response.headers.get("X-Window-Width")), presets, fullSize);
      image.bits = bits;
      return image;
    }

    /* Grey values of an 8-bit image file the browser decodes (no colour management). */
    async function decodeBitmap(blob) {
      const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none",
                                                    premultiplyAlpha: "none" });
      const scratch = document.createElement("canvas");
      scratch.width = bitmap.width; scratch.height = bitmap.height;
      const sctx = scratch.getContext("2d");
      sctx.drawImage(bitmap, 0, 0);
      const rgba = sctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
      const data = new Uint16Array(bitmap.width * bitmap.height);
      for (let i = 0; i < data.length; i++) data[i] = rgba[4 * i];
      bitmap.close();
      return { data, width: scratch.width, height: scratch.height };
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
      const image = SkalViewer.makeImage(data, bitmap.width, bitmap.height, 127.5, 256);
      image.bits = 8;
      return image;
    }

    async function fetchImage(id, full = false) {
      try {
        return await fetchPixels(id, full);
      } catch (error) {
        if (isNetworkError(error) || [401, 403, 404, 409].includes(error.status)) throw error;
        return fetchPng(id);
      }
    }

    /* id -> {promise, bytes, full}; Map order is recency (oldest first). */
    const cache = {
      entries: new Map(),
      stats: { hits: 0, misses: 0, prefetched: 0, full: 0 },
      get(id, { prefetch = false, full = false } = {}) {
        let entry = this.entries.get(id);
        if (entry && (entry.full || !full)) {
          this.entries.delete(id);            // most recent again
          if (!prefetch) this.stats.hits += 1;
        } else {
          if (full) this.stats.full += 1;
          else if (prefetch) this.stats.prefetched += 1;
          else this.stats.misses += 1;
          const older = entry;
          entry = { promise: fetchImage(id, full), bytes: 0, full };
          entry.promise.then((image) => {
            entry.bytes = image.bytes;
            entry.ready = true;
            entry.full = !image.partial;
            this.trim();
          }, () => {
            if (this.entries.get(id) !== entry) return;
            if (older) this.entries.set(id, older); else this.entries.delete(id);
          });
        }
        this.entries.set(id, entry);
        return entry.promise;
      },
      trim() {
        let total = 0;
        for (const e of this.entries.values()) total += e.bytes;
        for (const [id, e] of this.entries) {          // oldest first; keep the newest two
          if (total <= maxBytes || this.entries.size <= 2) break;
          total -= e.bytes;
          this.entries.delete(id);
        }
      },
      clear() { this.entries.clear(); },
      /* The promise of the film of ``id`` while its fetch is under way, else null. */
      inFlight(id) {
        const entry = this.entries.get(id);
        if (!entry || entry.ready) return null;
        this.stats.hits += 1;
        return entry.promise;
      },
      /* The decoded film of ``id`` when it is in memory now, else null (no fetch). */
      ready(id) {
        const entry = this.entries.get(id);
        if (!entry || !entry.ready) return null;
        this.entries.delete(id);              // most recent again
        this.entries.set(id, entry);
        this.stats.hits += 1;
        return entry.promise;
      },
    };

    return cache;
  }

  return { create };
})();
