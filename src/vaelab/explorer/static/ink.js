// Drawings made to look like the data's digits (MNIST's preprocessing): cropped to their ink, scaled so that the
// larger side fills the data's box (20 of 28 for MNIST), and shifted so that the centre of mass sits at the centre.
// The same computation as vaelab/explorer/ink.py (the tests hold them to one grey level of each other): pure
// functions over Float64Array grey images, light ink on black, values 0..255, row-major.

export const INK = 0.1; // a pixel is ink when brighter than this share of the brightest pixel
const roundHalfUp = (x) => Math.floor(x + 0.5);

// {top, bottom, left, right} of the ink (inclusive), or null for an image without ink
export function inkBounds(pixels, height, width) {
  let peak = 0;
  for (const p of pixels) peak = Math.max(peak, p);
  if (peak <= 0) return null;
  let top = height; let bottom = -1; let left = width; let right = -1;
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      if (pixels[y * width + x] > INK * peak) {
        top = Math.min(top, y); bottom = Math.max(bottom, y); left = Math.min(left, x); right = Math.max(right, x);
      }
    }
  }
  return { top, bottom, left, right };
}

// [nOut][nIn]: output pixel o averages the input over [o, o + 1) * nIn / nOut, weighted by overlap
export function areaWeights(nIn, nOut) {
  const scale = nIn / nOut;
  const rows = [];
  for (let o = 0; o < nOut; o += 1) {
    const start = o * scale;
    const row = new Float64Array(nIn);
    let sum = 0;
    for (let i = 0; i < nIn; i += 1) {
      const w = Math.max(Math.min(start + scale, i + 1) - Math.max(start, i), 0);
      row[i] = w; sum += w;
    }
    for (let i = 0; i < nIn; i += 1) row[i] /= sum;
    rows.push(row);
  }
  return rows;
}

// the crop [top..bottom] x [left..right] of `pixels` resampled to outH x outW (area average, separable)
export function resample(pixels, width, { top, bottom, left, right }, outH, outW) {
  const ch = bottom - top + 1; const cw = right - left + 1;
  const wy = areaWeights(ch, outH); const wx = areaWeights(cw, outW);
  const rows = new Float64Array(outH * cw); // wy @ crop
  for (let o = 0; o < outH; o += 1) {
    for (let i = 0; i < ch; i += 1) {
      const w = wy[o][i];
      if (w) for (let x = 0; x < cw; x += 1) rows[o * cw + x] += w * pixels[(top + i) * width + left + x];
    }
  }
  const out = new Float64Array(outH * outW); // (wy @ crop) @ wx^T
  for (let o = 0; o < outH; o += 1) {
    for (let p = 0; p < outW; p += 1) {
      let sum = 0;
      for (let x = 0; x < cw; x += 1) sum += rows[o * cw + x] * wx[p][x];
      out[o * outW + p] = sum;
    }
  }
  return out;
}

export function centreOfMass(pixels, height, width) {
  let total = 0; let cy = 0; let cx = 0;
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const p = pixels[y * width + x];
      total += p; cy += y * p; cx += x * p;
    }
  }
  return [cy / total, cx / total];
}

// A grey image of any size -> Uint8ClampedArray height x width: cropped to its ink, scaled (area average) so that
// its larger side is `box` pixels (aspect ratio kept), its centre of mass at the centre. No ink: black.
export function normalizeInk(pixels, srcH, srcW, height, width, box) {
  const out = new Float64Array(height * width);
  const bounds = inkBounds(pixels, srcH, srcW);
  if (bounds) {
    const ch = bounds.bottom - bounds.top + 1; const cw = bounds.right - bounds.left + 1;
    const scale = box / Math.max(ch, cw);
    const rh = Math.max(1, roundHalfUp(ch * scale)); const rw = Math.max(1, roundHalfUp(cw * scale));
    const scaled = resample(pixels, srcW, bounds, rh, rw);
    const [cy, cx] = centreOfMass(scaled, rh, rw);
    const oy = roundHalfUp((height - 1) / 2 - cy); const ox = roundHalfUp((width - 1) / 2 - cx);
    for (let y = Math.max(oy, 0); y < Math.min(oy + rh, height); y += 1) {
      for (let x = Math.max(ox, 0); x < Math.min(ox + rw, width); x += 1) out[y * width + x] = scaled[(y - oy) * rw + x - ox];
    }
  }
  return Uint8ClampedArray.from(out, roundHalfUp);
}

// The whole image resampled to height x width, as it is (the toggle "like the data" off).
export function shrink(pixels, srcH, srcW, height, width) {
  const out = resample(pixels, srcW, { top: 0, bottom: srcH - 1, left: 0, right: srcW - 1 }, height, width);
  return Uint8ClampedArray.from(out, roundHalfUp);
}
