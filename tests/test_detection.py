"""Detection and selective prediction: the statistics behind the "uncertainty under attack" page."""
from __future__ import annotations

import numpy as np
import pytest

from compute import detection
from compute.detection import auroc_interval, average_precision, fpr_at_tpr, risk_coverage, roc_points
from compute.metrics import wilson
from compute.metrics import auroc


def _pairwise(neg, pos):
    """The AUROC by its definition: over all (positive, negative) pairs, wins count 1 and ties 1/2."""
    diff = pos[:, None] - neg[None, :]
    return ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_equals_a_direct_pairwise_count(seed):
    rng = np.random.default_rng(seed)
    neg = rng.integers(0, 20, 300).astype(float)  # many ties
    pos = rng.integers(5, 25, 200).astype(float)
    assert auroc(neg, pos) == pytest.approx(_pairwise(neg, pos), abs=1e-12)


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_n():
    rng = np.random.default_rng(0)
    widths = []
    for n in (50, 400, 3000):
        neg, pos = rng.normal(0, 1, n), rng.normal(1, 1, n)
        low, high = auroc_interval(neg, pos, resamples=1000, seed=3)
        assert low <= auroc(neg, pos) <= high
        widths.append(high - low)
        assert auroc_interval(neg, pos, 1000, seed=3) == (low, high)  # seeded
    assert widths[0] > widths[1] > widths[2]
    # Close to the normal approximation: the bootstrap resamples both sides, not the pairs.
    neg, pos = rng.normal(0, 1, 3000), rng.normal(1, 1, 3000)
    low, high = auroc_interval(neg, pos, 2000, seed=1)
    boots = []
    for b in range(200):
        r = np.random.default_rng(100 + b)
        boots.append(auroc(r.choice(neg, len(neg)), r.choice(pos, len(pos))))
    assert (high - low) == pytest.approx(np.percentile(boots, 97.5) - np.percentile(boots, 2.5), rel=0.25)


def test_fpr_at_95_tpr_on_a_constructed_case():
    pos = np.arange(1, 101, dtype=float)  # 95% of positives are >= 6
    neg = np.array([0.0, 1.0, 5.0, 5.5, 6.0, 7.0, 50.0, 100.0, 2.0, 3.0])
    # The threshold flagging at least 95 positives is 6: negatives 6, 7, 50 and 100 are flagged.
    assert fpr_at_tpr(neg, pos) == pytest.approx(0.4)
    assert fpr_at_tpr(np.zeros(10), pos) == 0.0


def test_average_precision_and_roc_on_a_constructed_case():
    neg, pos = np.array([0.1, 0.4]), np.array([0.35, 0.8])
    # Ranked: 0.8 (pos), 0.4 (neg), 0.35 (pos), 0.1 (neg): precision 1 at recall 1/2, 2/3 at recall 1.
    assert average_precision(neg, pos) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    roc = roc_points(neg, pos)
    assert roc["fpr"].tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert roc["tpr"].tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert average_precision(np.array([0.0, 0.1]), np.array([0.5, 0.9])) == 1.0


def test_risk_coverage_keeps_the_most_certain_first():
    certainty = np.array([0.9, 0.8, 0.7, 0.6])
    correct = np.array([True, False, True, False])
    curve, aurc = risk_coverage(certainty, correct)
    assert curve["coverage"].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert curve["risk"].tolist() == pytest.approx([0.0, 0.5, 1 / 3, 0.5])
    assert aurc == pytest.approx(np.mean([0.0, 0.5, 1 / 3, 0.5]))
    # A score that ranks every error last has the lowest AURC.
    perfect, best = risk_coverage(np.array([0.9, 0.2, 0.7, 0.1]), correct)
    assert best < aurc and perfect["risk"].iloc[-1] == 0.5


def test_resampled_aurc_is_the_aurc_of_the_expanded_resample():
    """The closed form behind E-AURC's interval against the plain definition: each resample expanded
    (every drawn image repeated, most certain first) and its AURC and oracle computed directly."""
    rng = np.random.default_rng(4)
    certainty = rng.integers(0, 6, 40).astype(float)  # ties, kept in the full sample's order
    correct = rng.random(40) < 0.7
    counts = np.stack([np.bincount(rng.integers(0, 40, 40), minlength=40) for _ in range(25)])
    aurc, oracle = detection.aurc_resamples(certainty, correct, counts)
    order = np.argsort(-certainty, kind="stable")
    for r in range(len(counts)):
        drawn = np.repeat(order, counts[r][order])
        expected_aurc = detection.risk_coverage(np.arange(len(drawn), 0, -1.0), correct[drawn])[1]
        assert aurc[r] == pytest.approx(expected_aurc, abs=1e-12)
        assert oracle[r] == pytest.approx(detection.oracle_aurc(correct[drawn]), abs=1e-12)


def test_wilson_interval_matches_the_textbook_values_and_stays_inside_0_1():
    assert wilson(0, 0) != wilson(0, 0)  # NaN: no images, no interval
    low, high = wilson(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)  # not empty at 0%
    low, high = wilson(81, 263)  # Newcombe (1998), Table I
    assert (low, high) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
