"""Attractors found automatically: the limits of fixed and periodic pixels grouped by their invariant.

Each pixel whose orbit is a fixed point or a cycle (`pipeline.features`) falls in one cell of a
grid of side `attractor_tol` over the problem's invariant (θ for a custom loss, the product for a
factorization, so the rotations of one minimizer are one attractor; a cycle as the set of its
points); cells are hashed on the device. Tile by tile, `Cells` keeps one record per distinct
cell — its pixel count, kind and its most settled pixel (the smallest step), whose state is kept —
so the host only ever sees distinct cells: linear time in the pixels. At the end, cells of one kind
whose representatives lie within the tolerance (max norm) of each other are merged (neighbouring
cells of one attractor), by a sweep along a random direction, and the groups are the attractors.

Names: fixed points min0, min1, … ordered by loss, then by pixel count (losses within
LOSS_TIE·(1 + |L|) tie); cycles period2-0, …, period4-0, … the same way. Where a custom loss lists
`minima`, a fixed attractor within min_tol·(1 + ‖m‖) of minimum k takes its class name min{k},
the others are numbered on from there. At most MAX_ATTRACTORS (the largest) are listed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import numpy as np

from fractalgd.core.classes import FIRST_PROBLEM_CLASS
from fractalgd.core.jaxenv import with_x64
from fractalgd.pipeline.features import KIND_FIXED, KIND_NONE, ORBIT, orbit_key
from fractalgd.problems.base import HasLoss, compiled_form
from fractalgd.problems.custom import MAX_DISCOVERED, CustomProblem
from fractalgd.problems.features import attractor_tol, flat_theta

MAX_CELLS = 1 << 16  # distinct cells kept; pixels of further cells belong to no attractor
FEW_CELLS = 16  # cells of a tile grouped one mask each (see `_few_cells`)
SAMPLE_HASHES = 4096  # hashes sampled to guess a tile's few cells
MAX_SWEEP = 64  # neighbours along the sweep direction compared per cell when merging
MAX_ATTRACTORS = 64  # attractors listed in meta.json (the largest, by pixels)
LOSS_TIE = 1e-6
KIND_NAMES = {1: "fixed", 2: "period2", 4: "period4"}


@dataclass
class Cells:
    """Distinct attractor cells seen so far (host side), and the label counts of their pixels."""

    index: dict = field(default_factory=dict)  # cell hash → cell id
    count: list = field(default_factory=list)
    kind: list = field(default_factory=list)
    closeness: list = field(default_factory=list)
    pixel: list = field(default_factory=list)  # flat image index of the most settled pixel
    loss: list = field(default_factory=list)
    states: list = field(default_factory=list)  # that pixel's canonical state: leaves without the pixel axis
    label_counts: dict = field(default_factory=dict)  # (cell id, label) → pixels
    overflow: int = 0  # pixels of cells beyond MAX_CELLS
    treedef: object = None  # the state's tree structure

    def add(self, limits, labels: np.ndarray, offset: int, pixels: bool = True) -> np.ndarray | None:
        """Record one tile's pixels (flat indices offset + 0 … n−1); returns their cell ids (−1:
        none), or None where `pixels` is false (a render that needs no per-pixel cells)."""
        n = len(labels)
        member = limits.kind != KIND_NONE
        total = int(np.count_nonzero(member))
        if total == 0:
            return np.full(n, -1, np.int32) if pixels else None
        tile = _few_cells(limits.cell, member, total, limits.closeness, labels) or _many_cells(
            limits.cell, member, limits.closeness, labels
        )
        leaves, self.treedef = jax.tree_util.tree_flatten(limits.canonical)
        picked = [np.asarray(leaf)[..., tile.first] for leaf in leaves]  # one gather, a pixel per cell
        local = np.full(len(tile.unique), -1, np.int64)
        for u, h in enumerate(tile.unique.tolist()):
            pick = int(tile.first[u])
            cid = self.index.get(h)
            if cid is None:
                if len(self.count) >= MAX_CELLS:
                    self.overflow += int(tile.counts[u])
                    continue
                cid = self.index[h] = len(self.count)
                self.count.append(0)
                self.kind.append(int(limits.kind[pick]))
                self.closeness.append(np.inf)
                self.pixel.append(-1)
                self.loss.append(np.nan)
                self.states.append(None)
            local[u] = cid
            self.count[cid] += int(tile.counts[u])
            if limits.closeness[pick] < self.closeness[cid]:
                self.closeness[cid] = float(limits.closeness[pick])
                self.pixel[cid] = offset + pick
                self.loss[cid] = float(limits.loss[pick])
                self.states[cid] = [np.array(leaf[..., u]) for leaf in picked]
        for u, label, count in tile.pairs:  # cell, then label, ascending: the vote's tie order
            cid = int(local[u])
            if cid >= 0:
                self.label_counts[(cid, label)] = self.label_counts.get((cid, label), 0) + count
        return tile.ids(local, n) if pixels else None


@dataclass
class _TileCells:
    """One tile's member pixels grouped by cell: `unique` hashes ascending, each cell's pixel count
    and most settled pixel (tile index: the smallest closeness, the first of them on ties), its
    (cell, label, pixels) triples, and `ids(local, n)`: the per-pixel ids given each cell's."""

    unique: np.ndarray
    counts: np.ndarray
    first: np.ndarray
    pairs: list
    ids: Callable[[np.ndarray, int], np.ndarray]


def _few_cells(hashes, member, total: int, close, labels) -> _TileCells | None:
    """`_TileCells` of a tile of at most FEW_CELLS cells, or None for more: each cell is one
    boolean mask over the tile (compare-and-count passes, no gather, sort or scatter); the cells
    are guessed from a sample of the hashes, the pixels the guess misses grouped on their own."""
    n = len(hashes)
    step = max(1, n // SAMPLE_HASHES)
    guess = np.unique(hashes[::step][member[::step]])
    if len(guess) > FEW_CELLS:
        return None
    masks = [member & (hashes == h) for h in guess.tolist()]
    counts = [int(np.count_nonzero(m)) for m in masks]
    if sum(counts) < total:  # rare cells the sample missed
        missed = member.copy()
        for m in masks:  # disjoint subsets of the members: xor takes each out
            missed ^= m
        extra = np.unique(hashes[missed])
        if len(guess) + len(extra) > FEW_CELLS:
            return None
        masks += [missed & (hashes == h) for h in extra.tolist()]
        counts += [int(np.count_nonzero(m)) for m in masks[len(guess) :]]
        guess = np.concatenate((guess, extra))
        ranked = np.argsort(guess, kind="stable")
        guess, masks, counts = guess[ranked], [masks[i] for i in ranked], [counts[i] for i in ranked]
    # The most settled pixel of a cell: an argmin over the whole tile, the other pixels lifted
    # above every closeness by their top bit (closeness ≥ 0, so its bits order as the numbers).
    # np.where(mask, close, inf) is 3× slower.
    bits, top = _order_bits(close)
    first = np.empty(len(masks), np.intp)
    for u, m in enumerate(masks):
        first[u] = np.argmin(bits | (~m * top))
    by_label: dict = {}  # label → mask, computed when first asked for
    pairs = []
    for u, m in enumerate(masks):
        rest, found = m, {}
        while True:  # a cell's labels, one pass each: as a rule one label a cell
            label = int(labels[np.argmax(rest)])
            if label not in by_label:
                by_label[label] = labels == label
            found[label] = int(np.count_nonzero(rest & by_label[label]))
            if sum(found.values()) == counts[u]:
                break
            rest = rest & ~by_label[label]
        pairs += [(u, label, found[label]) for label in sorted(found)]

    def ids(local, n_pixels):
        out = np.full(n_pixels, -1, np.int32)
        for u, m in enumerate(masks):
            if local[u] >= 0:
                out[m] = local[u]
        return out

    return _TileCells(guess, np.asarray(counts), first, pairs, ids)


def _order_bits(close: np.ndarray):
    """(bits, top): `close` (≥ 0 or NaN: a step over a norm) as unsigned integers in the same
    order, NaN as inf and −0 as 0 (the sign bit cleared), and the top bit, above all of them."""
    width = 8 * close.dtype.itemsize
    unsigned = np.dtype(f"uint{width}")
    top = unsigned.type(1) << unsigned.type(width - 1)
    inf = np.array(np.inf, close.dtype).view(unsigned)
    return np.minimum(np.ascontiguousarray(close).view(unsigned) & ~top, inf), top


def _many_cells(hashes, member, close, labels) -> _TileCells:
    """`_TileCells` of any tile: the member pixels gathered and grouped by `_group`."""
    index = np.flatnonzero(member)
    close = close[index]
    unique, inverse, counts, first = _group(hashes[index], np.where(np.isnan(close), np.inf, close))
    # (cell, label) pairs counted by one bincount over cell·256 + label: linear, no sort
    keys = np.bincount(inverse.astype(np.int64) * 256 + labels[index].astype(np.int64), minlength=len(unique) * 256)
    pairs = [(key // 256, key % 256, int(keys[key])) for key in np.flatnonzero(keys).tolist()]

    def ids(local, n_pixels):
        out = np.full(n_pixels, -1, np.int32)
        out[index] = local[inverse]
        return out

    return _TileCells(unique, counts, index[first], pairs, ids)


def _group(hashes: np.ndarray, close: np.ndarray):
    """The cells of a tile's member pixels (any number of them): (unique hashes (sorted),
    inverse, counts, first), first[u] the index of cell u's most settled pixel (the smallest
    `close`, the first of them on ties) — np.unique(hashes, return_inverse=True,
    return_counts=True) plus a per-cell argmin, by a sort, a binary search and two scatter-mins
    (np.unique's inverse would take an argsort, 15× a sort at 10⁵)."""
    ordered = np.sort(hashes)
    unique = ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]
    k = len(unique)
    inverse = np.searchsorted(unique, hashes)
    best = np.full(k, np.inf, close.dtype)
    np.minimum.at(best, inverse, close)
    settled = np.flatnonzero(close == best[inverse])
    first = np.full(k, len(hashes), np.intp)
    np.minimum.at(first, inverse[settled], settled)
    return unique, inverse, np.bincount(inverse, minlength=k), first


class _Union:
    def __init__(self, n: int):
        self.parent = np.arange(n)

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def merge_cells(keys: np.ndarray, kinds: np.ndarray, tol: float) -> np.ndarray:
    """Group ids of cells (keys (C, m) float64): same kind and within `tol` in max norm, transitively.

    Sorted along one random direction g, two keys within tol (max norm) are within tol·‖g‖₁ along
    it, so each cell is compared with the following ones until that window ends (at most MAX_SWEEP).
    """
    count = len(keys)
    union = _Union(count)
    if count > 1:
        g = np.random.default_rng(3).standard_normal(keys.shape[1])
        proj = keys @ g
        order = np.argsort(proj, kind="stable")
        window = tol * np.abs(g).sum()
        for shift in range(1, min(count, MAX_SWEEP + 1)):
            a, b = order[:-shift], order[shift:]
            near_proj = proj[b] - proj[a] <= window
            if not near_proj.any():
                break
            close = near_proj & (kinds[a] == kinds[b]) & (np.max(np.abs(keys[a] - keys[b]), axis=1) <= tol)
            for i, j in zip(a[close].tolist(), b[close].tolist(), strict=True):
                union.union(i, j)
    return np.array([union.find(i) for i in range(count)], dtype=np.int64)


def pixel_coordinates(plane, flat: np.ndarray) -> dict[str, np.ndarray]:
    """Physical coordinates of flat pixel indices (row-major, row 0 at the top), as `Plane.coordinates`."""
    row, col = np.divmod(np.asarray(flat, dtype=np.int64), plane.x.n)
    return {plane.x.param: plane.x.values(col), plane.y.param: plane.y.values(plane.y.n - 1 - row)}


@functools.lru_cache(maxsize=16)
def _orbit_fn(problem):
    """One compiled function per problem: the orbit keys and points of kept states (shapes padded)."""
    kernel = problem.kernel

    @jax.jit
    def orbit(state, hyper):
        coeffs = kernel.prepare(hyper)
        states = [state]
        for _ in range(ORBIT - 1):
            states.append(kernel.step(states[-1], coeffs))
        return orbit_key(problem, states), [flat_theta(problem, s) for s in states]

    return orbit


@with_x64
def _representatives(config, cells: Cells, ids: np.ndarray):
    """(orbit keys (C, 4m), orbit points as flat θ (C, ORBIT, n)) of the cells' kept states."""
    problem = config.problem
    count = len(ids)
    padded = np.concatenate([ids, np.full((1 << max(0, count - 1).bit_length()) - count, ids[-1])])  # few shapes: few compiles
    leaves = [np.stack([cells.states[i][k] for i in padded], axis=-1) for k in range(len(cells.states[ids[0]]))]
    state = jax.tree_util.tree_unflatten(cells.treedef, leaves)
    coords = pixel_coordinates(config.plane, [cells.pixel[i] for i in padded])
    _, hyper = problem.initial(coords, np.dtype(config.gd.dtype))
    keys, flats = _orbit_fn(compiled_form(problem))(state, hyper)
    keys = np.asarray(keys)[:, :count]
    return keys.T, np.stack([np.asarray(f)[:, :count] for f in flats], axis=0).transpose(2, 0, 1)


@dataclass
class Attractors:
    """The attractor table and the map from cells to its rows."""

    table: list[dict]  # meta.json's "attractors"
    of_cell: np.ndarray  # (cells,) int32: row of the table, −1 if not listed
    total: int  # attractors found (the table lists at most MAX_ATTRACTORS)
    discovered: int  # fixed attractors named for the labels (custom without minima), ≤ the names available


def _order(losses: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Indices by loss (ties within LOSS_TIE·(1 + |L|) ordered by more pixels first); NaN losses last."""
    finite = np.isfinite(losses)
    by_loss = np.argsort(np.where(finite, losses, np.inf), kind="stable")
    groups, current, start = np.zeros(len(losses), np.int64), 0, None
    for i in by_loss:
        value = losses[i] if finite[i] else np.inf
        if start is None or not (value - start <= LOSS_TIE * (1 + abs(start)) or value == start):
            current, start = current + 1, value
        groups[i] = current
    return np.lexsort((-pixels, groups))


def find_attractors(config, cells: Cells, class_names) -> Attractors:
    """Merge the cells and build the table (see the module docstring); `class_names` name the `class` field."""
    problem = config.problem
    kept = np.array([i for i in range(len(cells.count)) if cells.states[i] is not None], dtype=np.int64)
    of_cell = np.full(len(cells.count), -1, np.int32)
    if kept.size == 0:
        return Attractors([], of_cell, 0, 0)
    keys, orbits = _representatives(config, cells, kept)
    kinds = np.array([cells.kind[i] for i in kept])
    group = merge_cells(keys, kinds, attractor_tol(problem))
    roots, group_of = np.unique(group, return_inverse=True)
    pixels = np.bincount(group_of, weights=[cells.count[i] for i in kept]).astype(np.int64)
    close = np.array([cells.closeness[i] for i in kept])
    best = np.full(len(roots), -1)
    for j in np.lexsort((close, group_of)):  # the most settled cell of each group comes first
        if best[group_of[j]] < 0:
            best[group_of[j]] = j
    losses = np.array([cells.loss[kept[b]] for b in best]) if isinstance(problem, HasLoss) else np.full(len(roots), np.nan)
    listed = np.argsort(-pixels, kind="stable")[:MAX_ATTRACTORS]
    group_kind = kinds[best]
    rows, names = [], {}
    custom = isinstance(problem, CustomProblem)
    minima = [np.asarray(m) for m in problem.minima] if custom else []
    discovers = custom and problem.discovers_minima
    discovered = 0
    for kind in sorted(set(group_kind[listed].tolist())):
        mine = listed[group_kind[listed] == kind]
        mine = mine[_order(losses[mine], pixels[mine])]
        number = len(minima) if kind == KIND_FIXED else 0
        for g in mine:
            state = orbits[best[g], 0]
            name = None
            if kind == KIND_FIXED:
                for k, m in enumerate(minima):
                    if np.linalg.norm(state - m) < problem.min_tol * (1 + np.linalg.norm(m)):
                        name = f"min{k}"
                        break
            if name is None:
                name = f"min{number}" if kind == KIND_FIXED else f"{KIND_NAMES[kind]}-{number}"
                number += 1
            names[g] = name
            if kind == KIND_FIXED and discovers and number <= MAX_DISCOVERED:
                discovered += 1
    order = sorted(names, key=lambda g: (group_kind[g] != KIND_FIXED, group_kind[g], _rank(names[g])))
    row_of = {g: r for r, g in enumerate(order)}
    group_of_cell = dict(zip(kept.tolist(), group_of.tolist(), strict=True))
    label_pixels: dict = {}
    for (cid, label), n in cells.label_counts.items():
        g = group_of_cell.get(cid)
        if g in row_of:
            label_pixels.setdefault(g, {})[label] = label_pixels.get(g, {}).get(label, 0) + n
    for g in order:
        period = int(group_kind[g])
        votes = label_pixels.get(g, {})
        majority = max(votes, key=votes.get) if votes else None
        entry = {
            "name": names[g],
            "kind": KIND_NAMES[period],
            "state": _numbers(orbits[best[g], 0]),
            "pixels": int(pixels[g]),
            "loss": _number(losses[g]),
            "class": class_names[majority] if majority is not None and majority < len(class_names) else None,
        }
        if period > 1:
            entry["orbit"] = [_numbers(orbits[best[g], j]) for j in range(period)]
        rows.append(entry)
    for j, g in enumerate(group_of):
        if g in row_of:
            of_cell[kept[j]] = row_of[g]
    return Attractors(rows, of_cell, len(roots), discovered)


def _rank(name: str) -> int:
    return int(name.rsplit("-", 1)[-1]) if "-" in name else int(name[3:])


def _number(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _numbers(values) -> list:
    return [_number(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def attractor_rows(pixel_cell: np.ndarray, attractors: Attractors, dtype=np.int64) -> np.ndarray:
    """Per pixel, its row of the attractor table (−1, or NaN for a float `dtype`: none; pixel_cell
    −1 or a cell not listed), by one gather (cell −1 reads the appended entry)."""
    none = np.nan if np.issubdtype(dtype, np.floating) else -1
    lookup = np.append(np.where(attractors.of_cell >= 0, attractors.of_cell, none), none).astype(dtype)
    return lookup.take(pixel_cell)


def discovered_labels(labels: np.ndarray, pixel_cell: np.ndarray, attractors: Attractors, converged: int) -> np.ndarray:
    """Labels with `converged` pixels renamed min{k} after their fixed attractor (custom without minima).

    Class min{k} is FIRST_PROBLEM_CLASS + 1 + k (after `converged`); fixed attractors beyond the
    names available stay `converged`.
    """
    row = attractor_rows(pixel_cell, attractors)
    ids = np.full(len(attractors.table) + 1, -1, np.int64)
    for r, entry in enumerate(attractors.table):
        if entry["kind"] == "fixed" and entry["name"].startswith("min"):
            k = int(entry["name"][3:])
            if k < attractors.discovered:
                ids[r] = FIRST_PROBLEM_CLASS + 1 + k
    new = ids[row]  # row −1 → the last entry, −1
    return np.where((labels == converged) & (new >= 0), new, labels).astype(labels.dtype)
