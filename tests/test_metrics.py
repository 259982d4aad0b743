"""Exact metrics against independent oracles (scikit-learn, brute-force Python)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from trainables.metrics import (auc, auc_per_objective, auc_sum, dcg_at_k, gauc,
                                gauc_per_objective)


# --------------------------------------------------------------------------- helpers
def _labels(rng, n, rate):
    """Bernoulli(rate) labels of length n holding both classes."""
    y = (rng.random(n) < rate).astype(np.int64)
    if y.sum() == 0:
        y[rng.integers(n)] = 1
    if y.sum() == n:
        y[rng.integers(n)] = 0
    return y


def _scores(rng, n, kind, y=None):
    if kind == "normal":
        s = rng.normal(size=n)
        if y is not None:
            s = s + 0.7 * y  # informative, so AUC is away from 0.5
        return s
    if kind == "int":       # heavy ties: few distinct integer values
        s = rng.integers(0, 5, n).astype(np.float64)
        if y is not None:
            s = s + y * rng.integers(0, 2, n)
        return s
    if kind == "rounded":   # ties from rounding
        return np.round(rng.normal(size=n) + (0.5 * y if y is not None else 0), 1)
    if kind == "constant":  # all equal -> AUC exactly 0.5
        return np.full(n, 0.25)
    raise AssertionError(kind)


def _brute_gauc(s, y, g):
    num = den = 0.0
    for grp in np.unique(g):
        m = g == grp
        yg = y[m]
        if 0 < yg.sum() < len(yg):
            num += m.sum() * roc_auc_score(yg, s[m])
            den += m.sum()
    return num / den if den else math.nan


def _brute_dcg(s, gain, k, groups):
    per = []
    for grp in sorted(set(groups)):
        idx = [i for i in range(len(s)) if groups[i] == grp]
        idx = sorted(idx, key=lambda i: -s[i])  # Python's sort is stable: ties keep input order
        per.append(sum(gain[i] / math.log2(pos + 2) for pos, i in enumerate(idx) if pos < k))
    return sum(per) / len(per)


# --------------------------------------------------------------------------- auc
CASES = [(seed, n, rate, kind)
         for seed, (n, rate, kind) in enumerate(
             (n, rate, kind)
             for n in (2, 3, 17, 250, 4_000, 50_000)
             for rate in (0.001, 0.05, 0.5, 0.9)
             for kind in ("normal", "int", "rounded", "constant"))]


@pytest.mark.parametrize("seed,n,rate,kind", CASES)
def test_auc_matches_sklearn(seed, n, rate, kind):
    rng = np.random.default_rng(seed)
    y = _labels(rng, n, rate)
    s = _scores(rng, n, kind, y)
    expected = roc_auc_score(y, s)
    # numpy float64 / float32, torch float64 / float32
    assert auc(s, y) == pytest.approx(expected, abs=1e-6)
    s32 = s.astype(np.float32)
    assert auc(s32, y) == pytest.approx(roc_auc_score(y, s32), abs=1e-6)
    assert auc(torch.from_numpy(s), torch.from_numpy(y)) == pytest.approx(expected, abs=1e-6)
    assert auc(torch.from_numpy(s32), torch.from_numpy(y)) == pytest.approx(
        roc_auc_score(y, s32), abs=1e-6)
    if kind == "constant":
        assert auc(s, y) == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("label_dtype", [np.int8, np.int32, np.int64, bool, np.float32])
@pytest.mark.parametrize("as_torch", [False, True])
def test_auc_label_dtypes(label_dtype, as_torch):
    rng = np.random.default_rng(7)
    y = _labels(rng, 1_000, 0.2)
    s = np.round(rng.normal(size=1_000) + y, 1).astype(np.float32)
    expected = roc_auc_score(y, s)
    yy = y.astype(label_dtype)
    if as_torch:
        got = auc(torch.from_numpy(s), torch.from_numpy(yy))
    else:
        got = auc(s, yy)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, abs=1e-6)


def test_auc_integer_scores():
    rng = np.random.default_rng(3)
    y = _labels(rng, 500, 0.3)
    s = rng.integers(0, 4, 500) + y
    assert auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-6)
    assert auc(torch.from_numpy(s), torch.from_numpy(y)) == pytest.approx(
        roc_auc_score(y, s), abs=1e-6)


def test_auc_strided_and_list_inputs():
    rng = np.random.default_rng(4)
    Y = np.stack([_labels(rng, 400, 0.2), _labels(rng, 400, 0.6)], 1)
    S = np.round(rng.normal(size=(400, 2)), 1)
    # column slices and reversed views are not contiguous
    assert auc(S[:, 1], Y[:, 1]) == pytest.approx(roc_auc_score(Y[:, 1], S[:, 1]), abs=1e-9)
    assert auc(S[::-1, 0], Y[::-1, 0]) == pytest.approx(roc_auc_score(Y[:, 0], S[:, 0]),
                                                          abs=1e-9)
    assert auc(S[:, 0].tolist(), Y[:, 0].tolist()) == pytest.approx(
        roc_auc_score(Y[:, 0], S[:, 0]), abs=1e-9)


def test_auc_perfect_and_reversed():
    y = np.array([0, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    assert auc(s, y) == 1.0
    assert auc(-s, y) == 0.0


def test_auc_large_many_ties_exact():
    rng = np.random.default_rng(11)
    n = 200_000
    y = _labels(rng, n, 0.01)
    s = rng.integers(0, 50, n).astype(np.float32) + 3 * y.astype(np.float32)
    assert auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-9)


@pytest.mark.parametrize("y", [np.zeros(10, int), np.ones(10, int)])
def test_auc_one_class_raises(y):
    with pytest.raises(ValueError, match="one class"):
        auc(np.arange(10.0), y)
    with pytest.raises(ValueError, match="one class"):
        auc(torch.arange(10.0), torch.from_numpy(y))


@pytest.mark.parametrize("bad", [2, -1, 0.5])
def test_auc_non_binary_labels_raise(bad):
    y = np.array([0, 1, 0, 1, 0], dtype=np.float64)
    y[2] = bad
    with pytest.raises(ValueError, match="0/1"):
        auc(np.arange(5.0), y)
    with pytest.raises(ValueError, match="0/1"):
        auc(torch.arange(5.0), torch.from_numpy(y))


def test_auc_length_mismatch_raises():
    with pytest.raises(ValueError, match="length"):
        auc(np.arange(5.0), np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="length"):
        auc(torch.arange(4.0), torch.tensor([0, 1, 0, 1, 1]))


def test_auc_nan_scores_raise():
    with pytest.raises(ValueError, match="NaN"):
        auc(np.array([0.1, np.nan, 0.3]), np.array([0, 1, 0]))


# --------------------------------------------------------------------------- per objective / sum
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_auc_per_objective_matches_sklearn(dtype):
    rng = np.random.default_rng(5)
    n, k = 3_000, 4
    Y = np.stack([_labels(rng, n, r) for r in (0.4, 0.05, 0.002, 0.6)], 1)
    s = np.round(rng.normal(size=n) + Y[:, 0] - Y[:, 1], 1)
    st = torch.from_numpy(s).to(dtype)
    got = auc_per_objective(st, torch.from_numpy(Y).float())
    assert got.shape == (k,) and got.dtype == torch.float64
    s_np = st.numpy().astype(np.float64)
    for j in range(k):
        assert got[j].item() == pytest.approx(roc_auc_score(Y[:, j], s_np), abs=1e-6)


def test_auc_per_objective_nan_for_one_class_column():
    rng = np.random.default_rng(6)
    n = 500
    Y = np.stack([_labels(rng, n, 0.3), np.zeros(n, int), np.ones(n, int),
                  _labels(rng, n, 0.1)], 1)
    s = rng.normal(size=n)
    got = auc_per_objective(torch.from_numpy(s), torch.from_numpy(Y))
    assert math.isnan(got[1].item()) and math.isnan(got[2].item())
    assert got[0].item() == pytest.approx(roc_auc_score(Y[:, 0], s), abs=1e-6)
    assert got[3].item() == pytest.approx(roc_auc_score(Y[:, 3], s), abs=1e-6)


def test_auc_per_objective_1d_labels():
    rng = np.random.default_rng(8)
    y = _labels(rng, 300, 0.3)
    s = rng.integers(0, 6, 300).astype(np.float32)
    got = auc_per_objective(torch.from_numpy(s), torch.from_numpy(y))
    assert got.shape == (1,)
    assert got[0].item() == pytest.approx(roc_auc_score(y, s), abs=1e-6)


@pytest.mark.parametrize("as_torch", [False, True])
def test_auc_sum_matches_sklearn(as_torch):
    rng = np.random.default_rng(9)
    n = 5_000
    Y = np.stack([_labels(rng, n, r) for r in (0.3, 0.02, 0.7)], 1)
    s = np.round(rng.normal(size=n) + Y @ np.array([1.0, 0.5, -0.3]), 2).astype(np.float32)
    expected = sum(roc_auc_score(Y[:, j], s) for j in range(3))
    got = auc_sum(torch.from_numpy(s), torch.from_numpy(Y)) if as_torch else auc_sum(s, Y)
    assert got == pytest.approx(expected, abs=1e-6)


def test_auc_sum_one_class_column_raises():
    Y = np.array([[0, 0], [1, 0], [0, 0]])
    with pytest.raises(ValueError, match=r"\[1\]"):
        auc_sum(np.array([0.1, 0.2, 0.3]), Y)


# --------------------------------------------------------------------------- gauc
@pytest.mark.parametrize("seed", range(8))
def test_gauc_matches_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(50, 4_000))
    n_groups = int(rng.integers(1, 80))
    # non-contiguous, possibly negative group ids, in random order
    ids = rng.choice(np.arange(-500, 500), n_groups, replace=False)
    g = ids[rng.integers(0, n_groups, n)]
    rate = float(rng.choice([0.02, 0.2, 0.5]))
    y = (rng.random(n) < rate).astype(np.int64)
    if seed % 2:
        s = rng.integers(0, 4, n).astype(np.float32) + y  # heavy ties
    else:
        s = np.round(rng.normal(size=n) + y, 1)
    expected = _brute_gauc(s.astype(np.float64), y, g)
    if math.isnan(expected):
        with pytest.raises(ValueError):
            gauc(s, y, g)
        return
    assert gauc(s, y, g) == pytest.approx(expected, abs=1e-6)
    assert gauc(torch.from_numpy(s), torch.from_numpy(y), torch.from_numpy(g)) == \
        pytest.approx(expected, abs=1e-6)


def test_gauc_small_hand_case():
    # group 7: AUC 1 (3 rows); group 3: one class only (ignored); group 1: AUC 0.5 with a tie (2 rows)
    s = np.array([0.1, 0.9, 0.5, 0.3, 0.3, 0.2, 0.4])
    y = np.array([0, 1, 0, 1, 0, 1, 1])
    g = np.array([7, 7, 7, 1, 1, 3, 3])
    assert gauc(s, y, g) == pytest.approx((3 * 1.0 + 2 * 0.5) / 5, abs=1e-12)


def test_gauc_single_group_equals_auc():
    rng = np.random.default_rng(12)
    y = _labels(rng, 2_000, 0.1)
    s = rng.integers(0, 10, 2_000) + y
    assert gauc(s, y, np.zeros(2_000, np.int64)) == pytest.approx(roc_auc_score(y, s), abs=1e-9)


def test_gauc_no_group_with_both_classes_raises():
    s = np.array([0.1, 0.2, 0.3, 0.4])
    y = np.array([0, 0, 1, 1])
    g = np.array([1, 1, 2, 2])
    with pytest.raises(ValueError, match="no group"):
        gauc(s, y, g)


def test_gauc_groups_shape_mismatch_raises():
    with pytest.raises(ValueError):
        gauc(np.arange(4.0), np.array([0, 1, 0, 1]), np.array([0, 0, 1]))


def test_gauc_per_objective_matches_brute_force():
    rng = np.random.default_rng(13)
    n = 3_000
    g = rng.integers(0, 60, n)
    Y = np.stack([(rng.random(n) < r).astype(np.int64) for r in (0.3, 0.03, 0.002)], 1)
    Y = np.concatenate([Y, np.zeros((n, 1), np.int64)], 1)  # a column with no positives
    s = np.round(rng.normal(size=n) + Y[:, 0], 1).astype(np.float32)
    got = gauc_per_objective(torch.from_numpy(s), torch.from_numpy(Y), torch.from_numpy(g))
    assert got.shape == (4,)
    for j in range(4):
        expected = _brute_gauc(s.astype(np.float64), Y[:, j], g)
        if math.isnan(expected):
            assert math.isnan(got[j].item())
        else:
            assert got[j].item() == pytest.approx(expected, abs=1e-6)
    assert math.isnan(got[3].item())


# --------------------------------------------------------------------------- dcg
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 3, 10, 1000])
def test_dcg_at_k_matches_brute_force(seed, k):
    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(1, 400))
    s = rng.integers(0, 5, n).astype(np.float64) if seed % 2 else rng.normal(size=n)
    gain = rng.integers(0, 4, n).astype(np.float64)
    groups = rng.integers(0, 12, n) * 3 - 5
    expected_grouped = _brute_dcg(s.tolist(), gain.tolist(), k, groups.tolist())
    assert dcg_at_k(s, gain, k, groups) == pytest.approx(expected_grouped, rel=1e-9, abs=1e-12)
    assert dcg_at_k(torch.from_numpy(s), torch.from_numpy(gain), k,
                    torch.from_numpy(groups)) == pytest.approx(expected_grouped, rel=1e-9,
                                                               abs=1e-12)
    expected_one = _brute_dcg(s.tolist(), gain.tolist(), k, [0] * n)
    assert dcg_at_k(s, gain, k) == pytest.approx(expected_one, rel=1e-9, abs=1e-12)


def test_dcg_ties_keep_input_order():
    s = np.array([1.0, 1.0, 1.0])
    gain = np.array([0.0, 0.0, 5.0])
    # stable order: the gain-5 item is at position 2 -> 5 / log2(4) = 2.5
    assert dcg_at_k(s, gain, 3) == pytest.approx(2.5)
    assert dcg_at_k(s, gain, 2) == 0.0


def test_dcg_k_must_be_positive():
    with pytest.raises(ValueError):
        dcg_at_k(np.array([1.0]), np.array([1.0]), 0)
