"""Double-double arithmetic: a number is an unevaluated sum hi + lo of two float64s (≈ 32 digits).

The error-free transformations (Dekker 1971; Knuth TAOCP §4.2.2; Hida, Li & Bailey's QD library)
give the exact rounding error of one float64 operation as another float64:

    two_sum(a, b)  = (s, e):  s = fl(a + b),  s + e = a + b exactly
    two_prod(a, b) = (p, e):  p = fl(a · b),  p + e = a · b exactly (Dekker's split, no FMA)

and `add`/`mul` build double-double operations on them with relative error ≲ 4·2⁻¹⁰⁶. A pair is
normalized, |lo| ≤ ½ ulp(hi), so hi alone is the float64 rounding of the number.

Everything is written with `+ − ×` only, so the same code runs on numpy arrays (plane
coordinates) and inside jitted JAX kernels. Compilers keep IEEE order (XLA does not reassociate
floats; fast-math is off) but may contract a multiply into a following add (an FMA): XLA:CPU
allows it, and after XLA duplicates a product into several fusions each copy has one use, so
LLVM fuses it and the error term is computed from the exact product instead of its rounding —
errors of 10⁻¹⁷, not 10⁻³². The products whose rounding matters (Dekker's t = S·a and the
two-product's p = a·b) are therefore written p = a·b + zero, with `zero` a +0.0 only known at run
time: the value is the same rounded product, contracted or not, and an FMA result cannot be
contracted again. Kernels pass a traced zero; numpy (one operation at a time) needs none.
`tests/test_ddarith.py` checks jitted kernels against mpmath and that 1 + 10⁻²⁰ − 1 survives.
"""

from __future__ import annotations

SPLITTER = 134217729.0  # 2^27 + 1: Dekker's split of a float64 into two 26-bit halves
UNIT = 2.0**-106  # the unit roundoff of a double-double (its "ulp" relative to |x| is ≈ 2·UNIT)


def two_sum(a, b):
    """(s, e) with s = fl(a + b) and s + e = a + b exactly (Knuth; no condition on |a|, |b|)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def quick_two_sum(a, b):
    """(s, e) with s = fl(a + b) and s + e = a + b exactly, for |a| ≥ |b| (or a = 0)."""
    s = a + b
    return s, b - (s - a)


def split(a, zero=0.0):
    """(hi, lo) with a = hi + lo exactly, each of at most 26 significant bits (Dekker)."""
    t = SPLITTER * a + zero
    hi = t - (t - a)
    return hi, a - hi


def two_prod(a, b, zero=0.0):
    """(p, e) with p = fl(a · b) and p + e = a · b exactly (Dekker's product, no FMA needed).

    `zero`: a run-time +0.0 that keeps compilers from contracting the rounded products (module docstring).
    """
    p = a * b + zero
    ah, al = split(a, zero)
    bh, bl = split(b, zero)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def add(a, b):
    """a + b for pairs (hi, lo): the IEEE-style sum, relative error ≤ 2·UNIT even under cancellation."""
    s, e = two_sum(a[0], b[0])
    t, f = two_sum(a[1], b[1])
    s, e = quick_two_sum(s, e + t)
    return quick_two_sum(s, e + f)


def add_fast(a, b):
    """a + b for pairs, "sloppy" (QD's): 11 flops instead of 20; absolute error ≤ 2·UNIT·(|a| + |b|).

    Not relatively accurate under cancellation, but a GD step needs no more: every float64 step
    errs by u·(size of its terms) as well, and this is that bound at u = UNIT.
    """
    s, e = two_sum(a[0], b[0])
    return quick_two_sum(s, e + (a[1] + b[1]))


def sub_fast(a, b):
    """a − b for pairs, as `add_fast`."""
    return add_fast(a, neg(b))


def neg(a):
    return -a[0], -a[1]


def sub(a, b):
    """a − b for pairs."""
    return add(a, neg(b))


def mul(a, b, zero=0.0):
    """a · b for pairs: relative error ≤ 4·UNIT (the lo·lo term is below it)."""
    p, e = two_prod(a[0], b[0], zero)
    return quick_two_sum(p, e + (a[0] * b[1] + a[1] * b[0]))


def mul_float(a, b, zero=0.0):
    """a · b for a pair a and a float64 b."""
    p, e = two_prod(a[0], b, zero)
    return quick_two_sum(p, e + a[1] * b)


def add_float(a, b):
    """a + b for a pair a and a float64 b."""
    s, e = two_sum(a[0], b)
    return quick_two_sum(s, e + a[1])


def difference(a, b):
    """a − b rounded to one float64, for pairs that may be close (their hi parts cancel exactly)."""
    return (a[0] - b[0]) + (a[1] - b[1])
