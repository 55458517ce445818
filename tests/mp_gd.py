"""Independent high-precision GD for P1 (d = 1) with mpmath: the reference of the double-double tests.

    r = uv − y,   u⁺ = (1 − ηλ)u − η r v,   v⁺ = (1 − ηλ)v − η r u

run at `dps` decimal digits until the orbit settles (a step below 10^(−dps/2) of its size), leaves
every bound (‖θ‖² > 10¹²: "diverged"), or runs out of steps ("undecided"). A settled orbit with
λ > 0 at a minimizer (‖θ‖² = 2(y − λ)) is "nearest" if ⟨a_T, a₀⟩ > 0 (a = u + v, y > 0;
papers.md §1.3), else "farthest"; elsewhere "other".
"""

from __future__ import annotations

import mpmath


def p1_label(u0, v0, y=0.5, lam=0.2, eta=1.0, steps=3000, dps=60) -> str:
    """The class of the P1 pixel (u0, v0) (numbers or decimal strings), by GD at `dps` digits."""
    with mpmath.workdps(dps):
        u, v = mpmath.mpf(u0), mpmath.mpf(v0)
        y, lam, eta = mpmath.mpf(y), mpmath.mpf(lam), mpmath.mpf(eta)
        c = 1 - eta * lam
        a0 = u + v
        tol = mpmath.mpf(10) ** (-dps // 2)
        for _ in range(steps):
            r = u * v - y
            un, vn = c * u - eta * r * v, c * v - eta * r * u
            sq = un * un + vn * vn
            if sq > 1e12:
                return "diverged"
            step = abs(un - u) + abs(vn - v)
            u, v = un, vn
            if step < tol * (1 + mpmath.sqrt(sq)):
                if abs(sq - 2 * (y - lam)) < mpmath.mpf(10) ** -10:
                    return "nearest" if (u + v) * a0 > 0 else "farthest"
                return "other"
        return "undecided"


def p1_boundary(inside, outside, digits=40, inside_labels=("nearest",), **kw):
    """A boundary point on the segment inside → outside, by bisection to `digits`.

    A point counts as inside when its label is in `inside_labels` (default: the nearest/farthest
    boundary, starting from a "nearest" and a "farthest" point; ("nearest", "farthest") bisects
    the boundary of divergence). Returns (u, v) as mpmath numbers at `kw["dps"]` (default 60) digits.
    """
    dps = kw.get("dps", 60)
    with mpmath.workdps(dps):
        a = [mpmath.mpf(x) for x in inside]
        b = [mpmath.mpf(x) for x in outside]
        length = mpmath.sqrt((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2)
        while length > mpmath.mpf(10) ** -digits:
            mid = [(p + q) / 2 for p, q in zip(a, b, strict=True)]
            if p1_label(mid[0], mid[1], **kw) in inside_labels:
                a = mid
            else:
                b = mid
            length /= 2
        return a[0], a[1]
