"""The objectives equal their textbook formulas; the gradient penalty and orthogonal regulariser match hand computations."""

import torch
import torch.nn.functional as F
from torch import nn

from gan_course import losses


def test_minimax_losses_match_the_formulas():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    D = torch.sigmoid
    expected_D = -(torch.log(D(real)).mean() + torch.log(1 - D(fake)).mean())
    assert torch.allclose(losses.discriminator_loss(real, fake), expected_D)
    assert torch.allclose(losses.generator_loss_saturating(fake), torch.log(1 - D(fake)).mean())
    assert torch.allclose(losses.generator_loss_nonsaturating(fake), -torch.log(D(fake)).mean())


def test_discriminator_loss_is_bce():
    real, fake = torch.randn(5), torch.randn(5)
    bce = F.binary_cross_entropy_with_logits
    expected = bce(real, torch.ones(5)) + bce(fake, torch.zeros(5))
    assert torch.allclose(losses.discriminator_loss(real, fake), expected)


def test_saturating_loss_has_vanishing_gradient_when_d_rejects_fakes():
    fake = torch.tensor([-8.0], requires_grad=True)  # D(G(z)) ~ 3e-4: early training
    (g_sat,) = torch.autograd.grad(losses.generator_loss_saturating(fake), fake)
    (g_ns,) = torch.autograd.grad(losses.generator_loss_nonsaturating(fake), fake)
    assert g_sat.abs() < 1e-3 < 0.9 < g_ns.abs()


def test_losses_are_stable_for_extreme_logits():
    big = torch.tensor([1e4, -1e4])
    for value in (losses.discriminator_loss(big, big), losses.generator_loss_nonsaturating(big),
                  losses.generator_loss_saturating(big)):
        assert torch.isfinite(value)


def test_hinge_and_wasserstein():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert torch.allclose(losses.hinge_discriminator_loss(real, fake), torch.tensor(0.25 + 0.5))
    assert torch.allclose(losses.hinge_generator_loss(fake), torch.tensor(1.0))
    assert torch.allclose(losses.wasserstein_critic_loss(real, fake), torch.tensor(-1.0 - 1.25))
    assert torch.allclose(losses.wasserstein_generator_loss(fake), torch.tensor(1.0))


def test_gradient_penalty_of_a_linear_critic():
    """f(x) = w.x has gradient w everywhere, so the penalty is lambda * (||w|| - 1)^2 exactly."""
    w = torch.tensor([3.0, 4.0, 0.0, 0.0])  # ||w|| = 5
    critic = lambda x: x.flatten(1) @ w
    real, fake = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    gp = losses.gradient_penalty(critic, real, fake, lambda_gp=10.0)
    assert torch.allclose(gp, torch.tensor(10.0 * (5 - 1) ** 2))


def test_gradient_penalty_backpropagates_into_the_critic():
    critic = nn.Linear(4, 1)
    gp = losses.gradient_penalty(lambda x: critic(x).squeeze(1), torch.randn(8, 4), torch.randn(8, 4))
    gp.backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def test_weight_clipping():
    critic = nn.Linear(10, 10)
    nn.init.normal_(critic.weight, std=1.0)
    losses.clip_weights_(critic, 0.01)
    assert all(p.abs().max() <= 0.01 for p in critic.parameters())


def test_orthogonal_regularization_by_hand():
    layer = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    # W W^T = [[5, 11], [11, 25]]: off-diagonal squares 2 * 121
    assert torch.allclose(losses.orthogonal_regularization(layer, beta=1.0), torch.tensor(242.0))
    ortho = nn.Linear(3, 3, bias=False)
    nn.init.orthogonal_(ortho.weight)
    assert losses.orthogonal_regularization(ortho, beta=1.0) < 1e-10
