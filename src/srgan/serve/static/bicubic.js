// MATLAB imresize bicubic (Keys a = -0.5, mirrored edges), the same resize srgan uses on the
// server (srgan.resize.imresize), for the comparison side of the page: it is computed here
// from the very file that was uploaded, so a run uploads once and both sides show one image.
"use strict";

const Bicubic = (() => {
  function cubic(x) {
    const a = Math.abs(x);
    if (a <= 1) return 1.5 * a * a * a - 2.5 * a * a + 1;
    if (a <= 2) return -0.5 * a * a * a + 2.5 * a * a - 4 * a + 2;
    return 0;
  }

  // For each output index: 6 source indices (0-based, mirrored) and their weights.
  // Enlarging only (scale >= 1), so no antialiasing kernel is needed.
  function contributions(inLen, outLen) {
    const scale = outLen / inLen;
    const taps = 6;
    const index = new Int32Array(outLen * taps);
    const weight = new Float32Array(outLen * taps);
    const period = 2 * inLen;
    for (let x = 0; x < outLen; x++) {
      const u = (x + 1) / scale + 0.5 * (1 - 1 / scale);
      const left = Math.floor(u - 2);
      let sum = 0;
      for (let t = 0; t < taps; t++) {
        const w = cubic(u - (left + t));
        weight[x * taps + t] = w;
        sum += w;
        let j = (((left + t - 1) % period) + period) % period;
        if (j >= inLen) j = period - 1 - j;
        index[x * taps + t] = j;
      }
      for (let t = 0; t < taps; t++) weight[x * taps + t] /= sum;
    }
    return { index, weight, taps };
  }

  // One axis of the resize: `data` (w x h RGBA, any array type) -> `out` (the new size).
  // Writing into a Uint8ClampedArray rounds and clips, so the last pass needs no float copy.
  function pass(data, w, h, axis, outLen, out) {
    const c = contributions(axis === "x" ? w : h, outLen);
    const ow = axis === "x" ? outLen : w;
    const oh = axis === "x" ? h : outLen;
    const rounding = out instanceof Uint8ClampedArray;
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        let r = 0, g = 0, b = 0, a = 0;
        const at = axis === "x" ? x : y;
        for (let t = 0; t < c.taps; t++) {
          const k = c.weight[at * c.taps + t];
          const j = c.index[at * c.taps + t];
          const i = axis === "x" ? (y * w + j) * 4 : (j * w + x) * 4;
          r += k * data[i]; g += k * data[i + 1]; b += k * data[i + 2]; a += k * data[i + 3];
        }
        const o = (y * ow + x) * 4;
        if (rounding) {
          out[o] = Math.round(r); out[o + 1] = Math.round(g);
          out[o + 2] = Math.round(b); out[o + 3] = Math.round(a);
        } else {
          out[o] = r; out[o + 1] = g; out[o + 2] = b; out[o + 3] = a;
        }
      }
    }
  }

  // RGBA bytes (w x h) -> RGBA bytes (outW x outH) in `out`; the axis with the smaller scale
  // first, rows when they tie (as MATLAB does). Only the middle image is kept as floats.
  function resizeRGBA(src, w, h, outW, outH, out) {
    const rowsFirst = outH / h <= outW / w;
    if (rowsFirst) {
      const mid = new Float32Array(w * outH * 4);
      pass(src, w, h, "y", outH, mid);
      pass(mid, w, outH, "x", outW, out);
    } else {
      const mid = new Float32Array(outW * h * 4);
      pass(src, w, h, "x", outW, mid);
      pass(mid, outW, h, "y", outH, out);
    }
    return out;
  }

  // Decode `file`, enlarge it to outW x outH, and return a PNG blob (null if the browser
  // cannot decode the format, e.g. TIFF or PPM).
  async function enlargeFile(file, outW, outH) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch (e) {
      return null;
    }
    const w = bitmap.width;
    const h = bitmap.height;
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    const src = ctx.getImageData(0, 0, w, h).data;
    const img = new ImageData(outW, outH);
    resizeRGBA(src, w, h, outW, outH, img.data);
    canvas.width = outW;
    canvas.height = outH;
    ctx.putImageData(img, 0, 0);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  }

  return { resizeRGBA, enlargeFile };
})();
