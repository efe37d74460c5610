import math

import pytest
import torch

from ganaug.losses import LOSSES, get_loss


def test_bce_at_zero_logits_is_log2_per_term():
    zeros = torch.zeros(8)
    bce = get_loss("bce")
    assert math.isclose(bce.d_loss(zeros, zeros).item(), 2 * math.log(2), rel_tol=1e-6)
    assert math.isclose(bce.g_loss(zeros).item(), math.log(2), rel_tol=1e-6)


def test_bce_rewards_the_right_side():
    bce = get_loss("bce")
    big = torch.full((4,), 10.0)
    assert bce.d_loss(big, -big) < 1e-3  # confident and right
    assert bce.d_loss(-big, big) > 19  # confident and wrong
    assert bce.g_loss(big) < bce.g_loss(-big)


def test_hinge_values():
    hinge = get_loss("hinge")
    assert hinge.d_loss(torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5])).item() == pytest.approx(0.5 + 0.75)
    assert hinge.g_loss(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


def test_unknown_loss():
    with pytest.raises(ValueError, match="Unknown loss 'wgan'"):
        get_loss("wgan")
    assert set(LOSSES) >= {"bce", "hinge"}
