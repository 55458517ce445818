"""The render's pixel order: patches of a block each, every pixel once, and no result that depends on it."""

from __future__ import annotations

import numpy as np
import pytest

from fractalgd.config import config_from_dict
from fractalgd.core.pixel_order import PixelOrder
from fractalgd.pipeline import render, run_range

SHAPES = [(64, 64), (37, 23), (5, 100), (1, 50), (33, 64), (64, 33), (3, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("block", [1024, 128, 16, 7, 1])
def test_every_pixel_once_and_image_inverts_the_order(shape, block):
    order = PixelOrder.for_blocks(shape, block)
    n = shape[0] * shape[1]
    rows, cols = order.rows_cols(0, n)
    assert ((rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])).all()
    flat = rows * shape[1] + cols
    np.testing.assert_array_equal(np.sort(flat), np.arange(n))
    np.testing.assert_array_equal(order.flat_index(np.arange(n)), flat)
    # image() puts the value given at engine index i on pixel (rows[i], cols[i])
    image = order.image(np.arange(n))
    np.testing.assert_array_equal(image[rows, cols], np.arange(n))
    pairs = order.image(np.stack([np.arange(n), -np.arange(n)], axis=1))  # trailing axes travel along
    np.testing.assert_array_equal(pairs[rows, cols, 1], -np.arange(n))


@pytest.mark.parametrize("shape", [(37, 23), (64, 64), (5, 100)])
def test_any_range_is_the_same_slice_of_the_whole_order(shape):
    order = PixelOrder.for_blocks(shape, 16)
    n = shape[0] * shape[1]
    rows, cols = order.rows_cols(0, n)
    for start, stop in np.random.default_rng(3).integers(0, n + 1, size=(40, 2)):
        start, stop = min(start, stop), max(start, stop)
        r, c = order.rows_cols(start, stop)
        np.testing.assert_array_equal(r, rows[start:stop])
        np.testing.assert_array_equal(c, cols[start:stop])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("block", [128, 16, 7])
def test_bands_placed_one_run_at_a_time_give_the_whole_image(shape, block):
    # A render lays out runs of whole bands as its tiles finish: in any split into such runs
    # the image is the one image() gives, converted to the target's dtype; a run that does not
    # start and end at bands is refused.
    order = PixelOrder.for_blocks(shape, block)
    n = shape[0] * shape[1]
    values = np.random.default_rng(block).standard_normal((n, 2)).astype(np.float32)
    ends = sorted({*range(0, n, order.band_pixels), n})
    for trial in range(5):
        cuts = sorted({0, n, *np.random.default_rng(trial).choice(ends, size=min(3, len(ends)))})
        out = np.full((*shape, 2), np.nan)
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            order.place(out, values[a:b], a)
        np.testing.assert_array_equal(out, order.image(values, np.float64))
    if 1 < order.band_pixels < n:
        with pytest.raises(ValueError):  # starts inside a band
            order.place(np.empty((*shape, 2)), values[1 : order.band_pixels + 1], 1)
        with pytest.raises(ValueError):  # ends inside one
            order.place(np.empty((*shape, 2)), values[: order.band_pixels - 1], 0)


@pytest.mark.parametrize("block, patch", [(1024, (32, 32)), (512, (16, 32)), (256, (16, 16)), (128, (8, 16))])
def test_blocks_are_square_patches(block, patch):
    """Where the image is a whole number of patches, each run of `block` engine indices is one patch."""
    order = PixelOrder.for_blocks((128, 256), block)
    assert order.patch == patch
    rows, cols = order.rows_cols(0, 128 * 256)
    rows, cols = rows.reshape(-1, block), cols.reshape(-1, block)
    assert (rows.max(1) - rows.min(1) == patch[0] - 1).all() and (cols.max(1) - cols.min(1) == patch[1] - 1).all()


def test_narrow_images_get_patches_no_wider_than_the_image():
    assert PixelOrder.for_blocks((1000, 8), 1024).patch == (128, 8)
    assert PixelOrder.for_blocks((1, 4096), 1024).patch == (1, 32)


def p1(resolution, double_double=False):
    recipe = {"problem": {"kind": "scalar", "y": 0.5, "lam": 0.05}, "gd": {"eta": 1.0, "steps": 600},
              "plane": {"resolution": list(resolution), "x": {"param": "u0", "min": -3.0, "max": 3.0},
                        "y": {"param": "v0", "min": -2.5, "max": 2.5}},
              "engine": {"block": 64, "check_every": 8}}  # fmt: skip
    if double_double:
        recipe["gd"]["dtype"] = "double-double"
    return config_from_dict(recipe)


@pytest.mark.parametrize("double_double", [False, True])
def test_ordered_coordinates_are_the_planes_coordinates(double_double):
    """The same float64 (or double-double) values as `Plane.pixel_coordinates` at the same pixels,
    for the whole image and for a window of it."""
    config = p1((45, 37))
    plane = config.plane
    for shape, origin in [((37, 45), (0, 0)), ((10, 7), (20, 31))]:
        order = PixelOrder.for_blocks(shape, 16)
        rows, cols = order.rows_cols(3, shape[0] * shape[1] - 2)
        got = plane.ordered_coordinates(order, 3, shape[0] * shape[1] - 2, double_double, origin)
        want = plane.pixel_coordinates(rows + origin[0], cols + origin[1], double_double)
        for name in want:
            for g, w in zip(np.atleast_2d(got[name]), np.atleast_2d(want[name]), strict=True):
                np.testing.assert_array_equal(g, w)


def test_render_in_patches_equals_the_row_major_engine_and_runs_fewer_steps():
    """Labels and decision steps are each pixel's own; with early exit, patches of neighbours (who
    decide together) leave blocks less waiting than rows do."""
    config = p1((45, 37))
    result = render(config)
    rows = run_range(config, 0, config.plane.size)
    np.testing.assert_array_equal(result.labels, rows.labels.reshape(37, 45))
    np.testing.assert_array_equal(result.steps, rows.steps.reshape(37, 45))
    assert result.meta["pixel_steps"] < rows.executed_pixel_steps


def test_a_scored_render_lays_out_its_score_and_features_where_the_row_major_engine_puts_them():
    # The mlp's score (Sohl-Dickstein's convergence measure) and its features (one of them also
    # named "score") laid out band by band from tiles that end inside bands: each pixel's value
    # is the one the row-major engine gives it.
    # At the shipped-config test's size: tiles of 20 of its 48 pixels pad to the engine block it
    # compiled for, so this render reuses that program (its features' compile costs seconds).
    from fractalgd.config import load_config
    from tests.helpers import SMALL

    config = load_config("configs/mlp-sd.toml", list(SMALL))
    result = render(config, tile=20)
    rows = run_range(config, 0, config.plane.size)
    shape = config.plane.shape
    score = np.asarray(config.problem.score(rows.state), np.float64).reshape(shape)
    np.testing.assert_array_equal(result.score, score)
    assert np.isfinite(score).any() and not np.array_equal(result.score, result.features["score"], equal_nan=True)
    np.testing.assert_array_equal(result.labels, rows.labels.reshape(shape))
