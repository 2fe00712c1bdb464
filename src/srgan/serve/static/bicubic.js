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

  // RGBA bytes (w x h) -> Float32 RGBA (outW x outH), rows first when the scales tie
  // (MATLAB resizes the axis with the smaller scale first).
  function resizeRGBA(src, w, h, outW, outH) {
    const rowsFirst = outH / h <= outW / w;
    let data = Float32Array.from(src);
    let cw = w;
    let ch = h;
    const passes = rowsFirst ? ["y", "x"] : ["x", "y"];
    for (const axis of passes) {
      if (axis === "x") {
        const c = contributions(cw, outW);
        const out = new Float32Array(outW * ch * 4);
        for (let y = 0; y < ch; y++) {
          const row = y * cw * 4;
          for (let x = 0; x < outW; x++) {
            let r = 0, g = 0, b = 0, a = 0;
            for (let t = 0; t < c.taps; t++) {
              const k = c.weight[x * c.taps + t];
              const i = row + c.index[x * c.taps + t] * 4;
              r += k * data[i]; g += k * data[i + 1]; b += k * data[i + 2]; a += k * data[i + 3];
            }
            const o = (y * outW + x) * 4;
            out[o] = r; out[o + 1] = g; out[o + 2] = b; out[o + 3] = a;
          }
        }
        data = out;
        cw = outW;
      } else {
        const c = contributions(ch, outH);
        const out = new Float32Array(cw * outH * 4);
        for (let y = 0; y < outH; y++) {
          for (let x = 0; x < cw; x++) {
            let r = 0, g = 0, b = 0, a = 0;
            for (let t = 0; t < c.taps; t++) {
              const k = c.weight[y * c.taps + t];
              const i = (c.index[y * c.taps + t] * cw + x) * 4;
              r += k * data[i]; g += k * data[i + 1]; b += k * data[i + 2]; a += k * data[i + 3];
            }
            const o = (y * cw + x) * 4;
            out[o] = r; out[o + 1] = g; out[o + 2] = b; out[o + 3] = a;
          }
        }
        data = out;
        ch = outH;
      }
    }
    return data;
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
    const out = resizeRGBA(src, w, h, outW, outH);
    const img = new ImageData(outW, outH);
    for (let i = 0; i < out.length; i++) img.data[i] = Math.round(out[i]); // Uint8Clamped clips
    canvas.width = outW;
    canvas.height = outH;
    ctx.putImageData(img, 0, 0);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  }

  return { resizeRGBA, enlargeFile };
})();
