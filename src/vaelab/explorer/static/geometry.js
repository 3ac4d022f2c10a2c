// Latent geometry: a plane z = origin + u * axes[0] + v * axes[1] (orthonormal axes), and points projected on it.

export const dot = (a, b) => a.reduce((sum, x, i) => sum + x * b[i], 0);

export function project(z, plane) {
  const d = z.map((x, i) => x - plane.origin[i]);
  return [dot(d, plane.axes[0]), dot(d, plane.axes[1])];
}

// The latent point at (u, v) of the plane whose other components are those of `base`.
export function pointAt(u, v, plane, base) {
  const [bu, bv] = project(base, plane);
  return base.map((x, i) => x + (u - bu) * plane.axes[0][i] + (v - bv) * plane.axes[1][i]);
}

// The plane's origin shifted so that z(u, v) = origin + u a0 + v a1 keeps base's other components.
export function shiftedOrigin(plane, base) {
  return pointAt(0, 0, plane, base);
}

// The one-sigma ellipse of N(mean, diag(std^2)) projected on the plane, as [u, v] points.
export function ellipse(mean, std, plane, n = 64) {
  const [a0, a1] = plane.axes;
  let c00 = 0; let c01 = 0; let c11 = 0;
  std.forEach((s, k) => { const v = s * s; c00 += a0[k] * a0[k] * v; c01 += a0[k] * a1[k] * v; c11 += a1[k] * a1[k] * v; });
  const tr = (c00 + c11) / 2; const det = c00 * c11 - c01 * c01;
  const gap = Math.sqrt(Math.max(tr * tr - det, 0));
  const l1 = tr + gap; const l2 = Math.max(tr - gap, 0);
  const angle = Math.abs(c01) > 1e-12 ? Math.atan2(l1 - c00, c01) : (c00 >= c11 ? 0 : Math.PI / 2);
  const [cu, cv] = project(mean, plane);
  const points = [];
  for (let i = 0; i <= n; i += 1) {
    const t = (2 * Math.PI * i) / n;
    const x = Math.sqrt(l1) * Math.cos(t); const y = Math.sqrt(l2) * Math.sin(t);
    points.push([cu + x * Math.cos(angle) - y * Math.sin(angle), cv + x * Math.sin(angle) + y * Math.cos(angle)]);
  }
  return points;
}
