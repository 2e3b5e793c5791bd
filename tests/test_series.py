"""Smoothing, downsampling and JSON-safety, checked against literal expectations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trackio_flask.series import (
    Columns,
    centered_moving_average,
    decode_payload,
    downsample_indices,
    ema_debiased,
    json_numbers,
    round_significant,
    scalar_metrics,
    smoothing_reach,
)


def reference_ema(values, weight):
    last, count, out = 0.0, 0, []
    for value in values:
        if not math.isfinite(value):
            out.append(math.nan)
            continue
        last = last * weight + (1 - weight) * value
        count += 1
        out.append(last / (1 - weight ** count))
    return out


@pytest.mark.parametrize("weight", [0.0, 0.5, 0.9, 0.999])
def test_ema_matches_tensorboards_debiased_loop(weight):
    rng = np.random.default_rng(1)
    values = rng.normal(size=1000)
    values[[5, 300, 301]] = np.nan
    got = ema_debiased(values, weight)
    expected = reference_ema(values.tolist(), weight)
    assert np.allclose(got, expected, equal_nan=True, rtol=1e-9, atol=1e-12)


def test_ema_first_point_is_unbiased():
    assert ema_debiased(np.array([10.0, 10.0]), 0.9).tolist() == pytest.approx([10.0, 10.0])


def test_centered_average_skips_gaps_and_keeps_them():
    values = np.array([1.0, np.nan, 3.0, 5.0, np.nan])
    got = centered_moving_average(values, 3)
    assert got[0] == 1.0  # rows 0..1: only 1.0 is finite
    assert math.isnan(got[1]) and math.isnan(got[4])
    assert got[2] == 4.0  # rows 1..3 → (3 + 5) / 2
    assert got[3] == 4.0  # rows 2..4 → (3 + 5) / 2


def test_smoothing_reach_is_half_the_window_for_the_centred_average():
    assert smoothing_reach("sma", 10) == 5
    assert smoothing_reach("ema", 90) == 0
    assert smoothing_reach("sma", 0) == 0


def test_downsampling_keeps_a_single_spike_in_a_million_points_and_the_last_point():
    values = np.sin(np.linspace(0, 50, 1_000_000))
    values[654_321] = 40.0
    keep = downsample_indices(values, 1500)
    assert keep.size <= 1502
    assert 654_321 in keep
    assert keep[-1] == values.size - 1 and keep[0] == 0


def test_short_series_are_not_downsampled():
    assert downsample_indices(np.arange(10.0), 1500).tolist() == list(range(10))


def test_non_finite_values_become_null_not_invalid_json():
    assert json_numbers(np.array([1.0, np.nan, np.inf, -np.inf])) == [1.0, None, None, None]


def test_rounding_keeps_seven_significant_digits():
    got = round_significant(np.array([0.123456789, 123456.789, 1.5e-9, 0.0, np.nan]))
    assert got[0] == 0.1234568 and got[1] == 123456.8 and got[2] == 1.5e-9 and got[3] == 0.0
    assert math.isnan(got[4])


def test_payload_decoding_accepts_bytes_text_and_rejects_garbage():
    assert decode_payload(b'{"a": 1}') == {"a": 1}
    assert decode_payload('{"a": 1}') == {"a": 1}
    assert decode_payload(b"\xff not json") == {}
    assert decode_payload("[1, 2]") == {}


def test_scalar_metrics_flatten_nested_dicts_and_skip_rich_values():
    values = {"a": {"b": 1, "c": {"_type": "trackio.image"}}, "t": True, "s": "x", "n": "NaN"}
    flat = scalar_metrics(values)
    assert flat["a/b"] == 1.0 and math.isnan(flat["n"])
    assert set(flat) == {"a/b", "n"}


def test_columns_grow_and_find_rows_after_a_cursor():
    columns = Columns()
    for row_id in range(1, 200):
        columns.append(row_id * 2, row_id, 0.0, {"m": float(row_id)} if row_id % 2 else {})
    assert columns.length == 199
    assert columns.index_after(100) == 50
    assert math.isnan(columns.column("m")[1]) and columns.column("m")[0] == 1.0
    assert columns.column("never").size == 199


@pytest.mark.parametrize("method,amount", [("sma", 10), ("sma", 3), ("sma", 100), ("ema", 90)])
def test_smoothing_a_tail_equals_the_tail_of_smoothing_everything(method, amount):
    from trackio_flask.series import smooth

    rng = np.random.default_rng(3)
    values = rng.normal(size=500)
    values[rng.integers(0, 500, 40)] = np.nan
    whole = smooth(values, method, amount)
    for start in (0, 1, 7, 250, 495, 499):
        assert np.allclose(smooth(values, method, amount, start), whole[start:], equal_nan=True)


def test_finite_counts_follow_appends():
    columns = Columns()
    columns.extend([1, 2, 3], [0, 1, 2], [0, 0, 0], [{"a": 1.0}, {"a": np.nan, "b": 2}, {"a": 3}])
    columns.append(4, 3, 0, {"b": np.inf})
    assert columns.finite == {"a": 2, "b": 1}
