"""Holm's step-down adjustment against R.

Reference: R 4.2.2 (Debian r-base-core), stats::p.adjust:

    options(digits = 15)
    p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05), "holm")      # 0.05 0.08 0.09 0.09 0.09
    p.adjust(c(0.04, 0.001, 0.03, 0.5), "holm")            # 0.090 0.004 0.090 0.500
    p.adjust(c(0.2, NA, 0.01, 0.2), "holm")                # 0.40 NA 0.03 0.40
    p.adjust(c(0.6, 0.9), "holm")                          # 1 1
    p.adjust(c(0.0123), "holm")                            # 0.0123
    p.adjust(c(0.03, 0.01, 0.04, 0.02, 0.011, 0.5), "holm")  # 0.09 0.06 0.09 0.08 0.06 0.50
"""

from __future__ import annotations

import numpy as np
import pytest

from stormcohort.stats import holm

NA = np.nan
R_CASES = [
    ([0.01, 0.02, 0.03, 0.04, 0.05], [0.05, 0.08, 0.09, 0.09, 0.09]),      # monotonicity: cummax
    ([0.04, 0.001, 0.03, 0.5], [0.090, 0.004, 0.090, 0.500]),             # unsorted input, order kept
    ([0.2, NA, 0.01, 0.2], [0.40, NA, 0.03, 0.40]),                       # NA kept, not counted in m; ties
    ([0.6, 0.9], [1.0, 1.0]),                                             # capped at 1
    ([0.0123], [0.0123]),                                                 # a family of one
    ([0.03, 0.01, 0.04, 0.02, 0.011, 0.5], [0.09, 0.06, 0.09, 0.08, 0.06, 0.50]),
]


@pytest.mark.parametrize("p, expected", R_CASES)
def test_matches_r_p_adjust_holm(p, expected):
    np.testing.assert_allclose(holm(p), expected, rtol=1e-12, equal_nan=True)


def test_empty_and_all_missing():
    assert holm([]).shape == (0,)
    assert np.isnan(holm([NA, NA])).all()


def test_never_below_raw_and_ties_independent_of_order():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=12)
    p[3] = p[7]
    adj = holm(p)
    assert (adj >= p).all() and (adj <= 1).all() and adj[3] == adj[7]
    perm = rng.permutation(12)
    np.testing.assert_array_equal(holm(p[perm]), adj[perm])


def test_refuses_values_outside_0_1():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.2, 1.5])
