"""What makes a VQGAN more than a VQ-VAE: a patch discriminator and its loss.

A VQ-VAE trained on pixel error alone is rewarded for the *average* of all the pictures a
token grid could stand for, and averages are blurred. VQGAN (Esser, Rombach & Ommer,
2021) adds a second network, the discriminator, that looks at small patches and says
"real" or "rebuilt". The decoder is then also trained to make patches the discriminator
calls real, which an average blur is not.

The three pieces here are the paper's, written out:

- ``patch_discriminator``: taming-transformers' ``NLayerDiscriminator`` (a PatchGAN),
  sized for 32 px pictures; it outputs one logit per patch, not one per image.
- ``discriminator_loss`` (hinge) and ``generator_loss``: the two sides of the game.
- ``adaptive_weight``: how much the adversarial term counts. Its gradient at the
  decoder's last layer is scaled to the size of the reconstruction loss's gradient there,
  so neither drowns the other, whatever their raw sizes.

The paper's third loss, LPIPS (distances between features of a pretrained VGG16), needs
weights that cannot be downloaded here, so the course VQGAN is trained without it.
"""

import torch
import torch.nn.functional as F
from taming.modules.discriminator.model import NLayerDiscriminator, weights_init


def patch_discriminator(layers: int = 1, width: int = 32) -> torch.nn.Module:
    """A PatchGAN discriminator: pictures [B, 3, H, W] in [-1, 1] -> logits [B, 1, h, w].

    Each output logit sees one patch of the input: 16 px for ``layers=1``, so on a 32 px
    ShapeWorld picture it judges 14x14 overlapping patches rather than the whole scene.
    (taming's default, ``layers=3``, sees 70 px patches of 256 px photos.)
    """
    return NLayerDiscriminator(input_nc=3, ndf=width, n_layers=layers).apply(weights_init)


def discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss: push real patches' logits above +1 and rebuilt ones below -1.

    Logits already past their margin give no gradient, so the discriminator stops
    pushing on patches it already tells apart and works on the ones it does not.
    """
    return 0.5 * (F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean())


def generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """The decoder's side: raise the discriminator's logits on rebuilt pictures."""
    return -logits_fake.mean()


def adaptive_weight(reconstruction_loss: torch.Tensor, adversarial_loss: torch.Tensor,
                    last_layer: torch.Tensor, max_weight: float = 1e4) -> torch.Tensor:
    """The paper's lambda: |grad of reconstruction loss| / |grad of adversarial loss|.

    Both gradients are taken with respect to ``last_layer`` (the decoder's output
    convolution weight), the layer both losses reach first. Multiplying the adversarial
    loss by this ratio makes its push on the decoder as strong as the reconstruction
    loss's, early in training and late. The weight is a number, not part of the graph.
    """
    reconstruction_grad, = torch.autograd.grad(reconstruction_loss, last_layer, retain_graph=True)
    adversarial_grad, = torch.autograd.grad(adversarial_loss, last_layer, retain_graph=True)
    ratio = reconstruction_grad.norm() / (adversarial_grad.norm() + 1e-4)
    return ratio.clamp(0.0, max_weight).detach()
