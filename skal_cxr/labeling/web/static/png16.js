/* Decode a greyscale PNG (8 or 16 bits, not interlaced) into its stored values.
 *
 * Browsers decode PNG for display only, at 8 bits per channel, so a 16-bit
 * film drawn through <img> or createImageBitmap loses its low bits. This
 * reads the file itself: the IDAT chunks are inflated with the browser's own
 * DecompressionStream ("deflate" is the zlib format PNG uses), then each row
 * is unfiltered (PNG filters None, Sub, Up, Average, Paeth; ISO/IEC 15948
 * section 9) and the big-endian samples are read into a Uint16Array.
 */
"use strict";

const SkalPng = (() => {
  const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

  async function inflate(chunks) {
    const stream = new Blob(chunks).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  function paeth(a, b, c) {
    const p = a + b - c;
    const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
    if (pa <= pb && pa <= pc) return a;
    return pb <= pc ? b : c;
  }

  /* Undo the per-row filters in place; returns the rows without filter bytes. */
  function unfilter(raw, height, stride, bpp) {
    const out = new Uint8Array(height * stride);
    for (let y = 0; y < height; y++) {
      const type = raw[y * (stride + 1)];
      const src = y * (stride + 1) + 1;
      const row = y * stride, prev = row - stride;
      for (let x = 0; x < stride; x++) {
        const a = x >= bpp ? out[row + x - bpp] : 0;
        const b = y > 0 ? out[prev + x] : 0;
        const c = x >= bpp && y > 0 ? out[prev + x - bpp] : 0;
        let v = raw[src + x];
        switch (type) {
          case 0: break;
          case 1: v += a; break;
          case 2: v += b; break;
          case 3: v += (a + b) >> 1; break;
          case 4: v += paeth(a, b, c); break;
          default: throw new Error(`PNG: unknown filter type ${type} in row ${y}`);
        }
        out[row + x] = v & 0xff;
      }
    }
    return out;
  }

  /* ArrayBuffer of a PNG file -> {data: Uint16Array, width, height, bitDepth}. */
  async function decode(buffer) {
    const bytes = new Uint8Array(buffer);
    const view = new DataView(buffer);
    if (bytes.length < 8 || SIGNATURE.some((v, i) => bytes[i] !== v)) {
      throw new Error("PNG: not a PNG file");
    }
    let pos = 8, header = null;
    const idat = [];
    while (pos + 8 <= bytes.length) {
      const length = view.getUint32(pos);
      const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
      const body = bytes.subarray(pos + 8, pos + 8 + length);
      if (type === "IHDR") {
        header = { width: view.getUint32(pos + 8), height: view.getUint32(pos + 12),
                   bitDepth: body[8], colorType: body[9], interlace: body[12] };
      } else if (type === "IDAT") {
        idat.push(body);
      } else if (type === "IEND") {
        break;
      }
      pos += 12 + length;
    }
    if (!header) throw new Error("PNG: no IHDR chunk");
    const { width, height, bitDepth, colorType, interlace } = header;
    if (colorType !== 0 || (bitDepth !== 8 && bitDepth !== 16) || interlace !== 0) {
      throw new Error(`PNG: only non-interlaced 8- or 16-bit greyscale is read here `
        + `(colour type ${colorType}, ${bitDepth} bits, interlace ${interlace})`);
    }
    const bpp = bitDepth / 8;
    const stride = width * bpp;
    const raw = await inflate(idat);
    if (raw.length < height * (stride + 1)) {
      throw new Error(`PNG: ${raw.length} bytes of image data for ${width}x${height}`);
    }
    const rows = unfilter(raw, height, stride, bpp);
    const data = new Uint16Array(width * height);
    if (bpp === 2) {
      for (let i = 0; i < data.length; i++) data[i] = (rows[2 * i] << 8) | rows[2 * i + 1];
    } else {
      data.set(rows);
    }
    return { data, width, height, bitDepth };
  }

  return { decode };
})();
