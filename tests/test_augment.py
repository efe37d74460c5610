import pytest
import torch

from ganaug.augment import POLICIES, check_policy, cutout, diff_augment, translation


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_policies_keep_shape_and_pass_gradients(policy):
    x = (torch.rand(6, 3, 12, 10) * 2 - 1).requires_grad_()
    out = diff_augment(x, policy)
    assert out.shape == x.shape and out.dtype == x.dtype
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_shifts_content_and_pads_with_zeros():
    torch.manual_seed(0)
    x = torch.arange(64.0).reshape(1, 1, 8, 8).repeat(50, 1, 1, 1)
    out = translation(x)
    for img in out[:, 0]:
        # Each output is the input shifted by at most 1 pixel (ratio 1/8 of 8), zero-filled.
        ok = any(
            torch.equal(img, torch.nn.functional.pad(x[0, 0], (1, 1, 1, 1))[1 + dy : 9 + dy, 1 + dx : 9 + dx])
            for dy in (-1, 0, 1) for dx in (-1, 0, 1)
        )
        assert ok


def test_cutout_zeroes_a_quarter_when_inside():
    torch.manual_seed(0)
    out = cutout(torch.ones(400, 1, 8, 8))
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert zeros.max() == 16 and zeros.min() >= 4  # a 4x4 square, clipped at the borders


def test_same_seed_same_augmentation():
    x = torch.rand(4, 1, 8, 8)
    torch.manual_seed(3)
    a = diff_augment(x, "color,translation,cutout")
    torch.manual_seed(3)
    assert torch.equal(a, diff_augment(x, "color,translation,cutout"))


def test_policy_names():
    assert check_policy(None) == [] and check_policy("") == []
    assert check_policy(" translation , cutout ") == ["translation", "cutout"]
    assert set(POLICIES) == {"color", "translation", "cutout"}
    with pytest.raises(ValueError, match=r"Unknown augmentation policies \['blur'\]"):
        check_policy("translation,blur")
