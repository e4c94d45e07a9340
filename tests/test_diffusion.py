"""Diffusion from scratch: schedule, forward jump, loss and reverse steps against by-hand
formulas, classifier-free guidance (scale 0 = unconditional), sampling."""

import math

import pytest
import torch
import torch.nn.functional as F

from mmlearn import diffusion

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = diffusion.TinyUNet(in_channels=4, widths=(16, 32), cond_dim=8, emb_dim=32).eval()
    for p in model.parameters():  # the zero-initialised head would make every test trivial
        p.data.add_(0.05 * torch.randn_like(p))
    return model, diffusion.cosine_schedule(50)


def test_cosine_schedule_falls_from_clean_to_noise():
    s = diffusion.cosine_schedule(200)
    assert s.steps == 200 and s.alpha_bar[0] > 0.999 and s.alpha_bar[-1] < 3e-3
    assert (s.alpha_bar[1:] < s.alpha_bar[:-1]).all()
    assert torch.allclose(torch.cumprod(1 - s.betas, 0), s.alpha_bar)
    t, offset, end = 100, 0.008, 0.97  # the formula, by hand
    f = lambda u: math.cos((u * end + offset) / (1 + offset) * math.pi / 2) ** 2  # noqa: E731
    assert float(s.alpha_bar[t]) == pytest.approx(f((t + 1) / 200) / f(0), rel=1e-9)


def test_add_noise_is_the_forward_jump_and_keeps_unit_variance():
    s = diffusion.cosine_schedule(100)
    x0, noise = torch.randn(4000, 3), torch.randn(4000, 3)
    t = torch.full((4000,), 40)
    abar = float(s.alpha_bar[40])
    by_hand = math.sqrt(abar) * x0 + math.sqrt(1 - abar) * noise
    assert torch.allclose(diffusion.add_noise(x0, t, noise, s), by_hand, atol=1e-6)
    assert diffusion.add_noise(x0, t, noise, s).var().item() == pytest.approx(1.0, abs=0.06)


def test_loss_equals_the_by_hand_version(setup):
    model, s = setup
    x0, cond = torch.randn(6, 4, 8, 8), torch.randn(6, 8)
    loss = diffusion.diffusion_loss(model, x0, cond, s, p_uncond=0.3,
                                    generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # the same draws, in the documented order
    t = torch.randint(s.steps, (6,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    drop = torch.rand(6, generator=g) < 0.3
    cond = torch.where(drop[:, None], model.null_condition.expand_as(cond), cond)
    abar = s.alpha_bar[t].float().view(-1, 1, 1, 1)
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    with torch.no_grad():
        assert loss.item() == pytest.approx(F.mse_loss(model(x_t, t, cond), noise).item(), rel=1e-6)


def test_ddim_step_equals_the_by_hand_version(setup):
    model, s = setup
    x, eps = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    t, t_prev = torch.full((3,), 30), torch.full((3,), 20)
    a, a_prev = float(s.alpha_bar[30]), float(s.alpha_bar[20])
    x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
    by_hand = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * eps
    assert torch.allclose(diffusion.ddim_step(x, eps, t, t_prev, s), by_hand, atol=1e-5)


def test_ddpm_step_equals_the_by_hand_version():
    s = diffusion.cosine_schedule(50)
    x, eps, z = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
    t, t_prev = torch.full((3,), 10), torch.full((3,), 9)
    beta, a = float(s.betas[10]), float(s.alpha_bar[10])
    a_prev = float(s.alpha_bar[9])
    mean = (x - beta / math.sqrt(1 - a) * eps) / math.sqrt(1 - beta)  # DDPM's eq. 11
    sigma = math.sqrt(beta * (1 - a_prev) / (1 - a))
    out = diffusion.ddpm_step(x, eps, t, t_prev, s, z)
    assert torch.allclose(out, mean + sigma * z, atol=1e-5)
    last = diffusion.ddpm_step(x, eps, torch.zeros(3, dtype=torch.long),
                               torch.full((3,), -1), s, z)  # the last step adds no noise
    assert torch.allclose(last, diffusion.predict_x0(x, eps, torch.zeros(3, dtype=torch.long), s),
                          atol=1e-5)


def test_guidance_scale_zero_is_the_unconditional_model_and_one_the_conditional(setup):
    model, s = setup
    x, t, cond = torch.randn(2, 4, 8, 8), torch.tensor([5, 40]), torch.randn(2, 8)
    with torch.no_grad():
        uncond, conditional = model(x, t, None), model(x, t, cond)
        assert torch.equal(diffusion.guided_noise(model, x, t, cond, 0.0), uncond)
        assert torch.allclose(diffusion.guided_noise(model, x, t, cond, 1.0), conditional,
                              atol=1e-5)
        three = diffusion.guided_noise(model, x, t, cond, 3.0)
        assert torch.allclose(three, uncond + 3 * (conditional - uncond), atol=1e-5)
        g = torch.Generator
        a = diffusion.sample(model, cond, (4, 8, 8), s, 5, 0.0, generator=g().manual_seed(1))
        b = diffusion.sample(model, None, (4, 8, 8), s, 5, n=2, generator=g().manual_seed(1))
        assert torch.equal(a, b)


def test_sampling_is_seeded_and_records_frames(setup):
    model, s = setup
    cond = torch.randn(2, 8)
    frames = []
    a = diffusion.sample(model, cond, (4, 8, 8), s, steps=7, scale=2.0,
                         generator=torch.Generator().manual_seed(0), frames=frames)
    b = diffusion.sample(model, cond, (4, 8, 8), s, steps=7, scale=2.0,
                         generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and len(frames) == 7 and torch.equal(frames[-1], a)
    c = diffusion.sample(model, cond, (4, 8, 8), s, steps=7, sampler="ddpm",
                         generator=torch.Generator().manual_seed(0))
    assert c.shape == a.shape and torch.isfinite(c).all()
    assert diffusion.sampling_times(s, 5) == [49, 37, 24, 12, 0]
    with pytest.raises(ValueError, match="steps"):
        diffusion.sampling_times(s, 0)
    with pytest.raises(ValueError, match="sampler"):
        diffusion.sample(model, cond, (4, 8, 8), s, sampler="euler")


def test_a_tiny_denoiser_learns_something():
    """A few dozen steps on one fixed picture: the loss must fall well below its start."""
    torch.manual_seed(0)
    model = diffusion.TinyUNet(in_channels=2, widths=(16,), cond_dim=4, emb_dim=16)
    s = diffusion.cosine_schedule(50)
    x0 = torch.zeros(16, 2, 4, 4)
    x0[:, 0, 1:3, 1:3] = 1.0
    cond = torch.ones(16, 4)
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(80):
        loss = diffusion.diffusion_loss(model, x0, cond, s, 0.1, g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.6 * sum(losses[:10]) / 10
