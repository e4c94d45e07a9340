"""mmlearn.adversarial: the VQGAN's GAN pieces, checked against taming-transformers."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from taming.modules.losses.vqperceptual import VQLPIPSWithDiscriminator, hinge_d_loss

from mmlearn import adversarial
from mmlearn.shapes import ShapeWorld
from mmlearn.vqgan import edge_sharpness, to_vqgan_range


def test_hinge_loss_equals_taming():
    generator = torch.Generator().manual_seed(0)
    real, fake = torch.randn(4, 1, 14, 14, generator=generator), torch.randn(4, 1, 14, 14)
    assert torch.allclose(adversarial.discriminator_loss(real, fake), hinge_d_loss(real, fake))


def test_adaptive_weight_equals_taming():
    layer = torch.nn.Conv2d(4, 3, 3, padding=1)
    x = torch.randn(2, 4, 8, 8)
    output = layer(x)
    reconstruction_loss = (output - 1).pow(2).mean()
    fooling = adversarial.generator_loss(output.mean(dim=1, keepdim=True) * 3)
    ours = adversarial.adaptive_weight(reconstruction_loss, fooling, layer.weight)
    # taming's method needs only its discriminator_weight attribute (1.0: no extra factor)
    theirs = VQLPIPSWithDiscriminator.calculate_adaptive_weight(
        SimpleNamespace(discriminator_weight=1.0), reconstruction_loss, fooling,
        last_layer=layer.weight)
    assert torch.allclose(ours, theirs)
    assert not ours.requires_grad


def test_patch_discriminator_judges_16_pixel_patches():
    discriminator = adversarial.patch_discriminator().eval()
    picture = torch.zeros(1, 3, 32, 32, requires_grad=True)
    logits = discriminator(picture)
    assert logits.shape == (1, 1, 14, 14)
    logits[0, 0, 7, 7].backward()
    seen = (picture.grad.abs().sum(dim=(0, 1)) > 0).nonzero()
    assert (seen.max(dim=0).values - seen.min(dim=0).values + 1).tolist() == [16, 16]


def blurred(pictures: torch.Tensor) -> torch.Tensor:
    kernel = torch.full((3, 1, 3, 3), 1 / 9)
    return F.conv2d(F.pad(pictures, (1, 1, 1, 1), mode="replicate"), kernel, groups=3)


@pytest.mark.slow
def test_discriminator_learns_to_tell_sharp_from_blurred(one_thread):
    """What the GAN term relies on: a few hundred steps teach it to spot blur, held out."""
    torch.manual_seed(0)
    train = to_vqgan_range(ShapeWorld(2000, "train", seed=0).images.float() / 255)
    test = to_vqgan_range(ShapeWorld(200, "test_seen", seed=1).images.float() / 255)
    discriminator = adversarial.patch_discriminator()
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.9))
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        batch = train[torch.randint(len(train), (16,), generator=generator)]
        loss = adversarial.discriminator_loss(discriminator(batch), discriminator(blurred(batch)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    discriminator.eval()
    with torch.no_grad():
        real = discriminator(test).mean(dim=(1, 2, 3))
        fake = discriminator(blurred(test)).mean(dim=(1, 2, 3))
    # BatchNorm's running statistics shift both logits alike in eval mode: compare them
    # picture by picture, sharp against its own blurred copy
    assert (real > fake).float().mean() >= 0.9


def test_edge_sharpness_falls_with_blur():
    pictures = ShapeWorld(50, "test_seen", seed=0).images.float() / 255
    assert edge_sharpness(pictures, pictures) == 1.0
    once = edge_sharpness(pictures, blurred(pictures))
    twice = edge_sharpness(pictures, blurred(blurred(pictures)))
    assert 0 < twice < once < 0.8
