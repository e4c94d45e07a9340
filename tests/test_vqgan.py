"""Tests of mmlearn.vqgan: the model, loading taming checkpoints, and the shipped course VQGAN.

Official checkpoints are never downloaded: tests write .ckpt files in taming's layout
(a Lightning checkpoint whose ``state_dict`` also holds ``loss.*`` entries) with random
weights, and check the full f16_16384 layout on PyTorch's "meta" device (shapes only).
"""

import sys
import types

import pytest
import torch
import yaml

from mmlearn import vqgan
from mmlearn.optim import parameter_count
from mmlearn.shapes import ShapeWorld

TINY_CONFIG = {
    "model": {
        "base_learning_rate": 4.5e-6,
        "target": "taming.models.vqgan.VQModel",
        "params": {
            "embed_dim": 8,
            "n_embed": 64,
            "ddconfig": {"double_z": False, "z_channels": 32, "resolution": 16, "in_channels": 3,
                         "out_ch": 3, "ch": 32, "ch_mult": [1, 2], "num_res_blocks": 1,
                         "attn_resolutions": [8], "dropout": 0.0},
            "lossconfig": {"target": "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator",
                           "params": {"disc_start": 0, "disc_weight": 0.75,
                                      "codebook_weight": 1.0}},
        },
    }
}


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(TINY_CONFIG))
    return path


@pytest.fixture
def fake_lightning(monkeypatch):
    """A stand-in for pytorch_lightning's ModelCheckpoint class, importable by its real name.

    Old Lightning versions keyed ``checkpoint["callbacks"]`` by the callback class, so the
    pickle names pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint.
    """
    names = ["pytorch_lightning", "pytorch_lightning.callbacks",
             "pytorch_lightning.callbacks.model_checkpoint"]
    modules = {name: types.ModuleType(name) for name in names}
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    model_checkpoint = type("ModelCheckpoint", (), {})
    model_checkpoint.__module__ = names[-1]
    modules[names[-1]].ModelCheckpoint = model_checkpoint
    return model_checkpoint


def lightning_checkpoint(model: vqgan.VQGAN, callback_class) -> dict:
    """A checkpoint as taming's training (pytorch-lightning) writes it."""
    state_dict = dict(model.state_dict())
    state_dict["loss.logvar"] = torch.zeros(())
    state_dict["loss.perceptual_loss.net.slice1.0.weight"] = torch.randn(64, 3, 3, 3)
    state_dict["loss.perceptual_loss.lin0.model.1.weight"] = torch.randn(1, 64, 1, 1)
    state_dict["loss.discriminator.main.0.weight"] = torch.randn(64, 3, 4, 4)
    first = next(iter(model.parameters()))
    return {
        "epoch": 3, "global_step": 1234, "pytorch-lightning_version": "1.0.8",
        "state_dict": state_dict,
        "optimizer_states": [{"state": {0: {"step": 10, "exp_avg": torch.zeros_like(first),
                                            "exp_avg_sq": torch.zeros_like(first)}},
                              "param_groups": [{"lr": 4.5e-6, "betas": (0.5, 0.9),
                                                "params": [0]}]}],
        "lr_schedulers": [],
        "callbacks": {callback_class: {"best_model_score": torch.tensor(0.5),
                                       "best_model_path": "logs/last.ckpt"}},
    }


def test_lightning_checkpoint_loads_and_reproduces_the_model(tiny_config, tmp_path,
                                                             fake_lightning):
    torch.manual_seed(0)
    original = vqgan.vqgan_from_config(tiny_config).eval()
    ckpt = tmp_path / "last.ckpt"
    torch.save(lightning_checkpoint(original, fake_lightning), ckpt)

    loaded = vqgan.load_taming_vqgan(ckpt, tiny_config, device="cpu")
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        z_q, indices = loaded.encode(x)
        expected_z_q, expected_indices = original.encode(x)
        assert torch.equal(indices, expected_indices)
        assert torch.equal(loaded.decode(z_q), original.decode(expected_z_q))
    assert indices.shape == (2, 8, 8) and not loaded.training


def test_missing_or_unexpected_keys_are_named(tiny_config, tmp_path, fake_lightning):
    model = vqgan.vqgan_from_config(tiny_config)
    checkpoint = lightning_checkpoint(model, fake_lightning)
    del checkpoint["state_dict"]["decoder.conv_out.bias"]
    checkpoint["state_dict"]["encoder.extra_layer.weight"] = torch.zeros(1)
    torch.save(checkpoint, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError, match="decoder.conv_out.bias") as error:
        vqgan.load_taming_vqgan(tmp_path / "bad.ckpt", tiny_config)
    assert "encoder.extra_layer.weight" in str(error.value)


def test_wrong_config_is_reported(tmp_path, tiny_config, fake_lightning):
    wider = yaml.safe_load(tiny_config.read_text())
    wider["model"]["params"]["ddconfig"]["ch"] = 64
    (tmp_path / "wider.yaml").write_text(yaml.safe_dump(wider))
    torch.save(lightning_checkpoint(vqgan.vqgan_from_config(tiny_config), fake_lightning),
               tmp_path / "last.ckpt")
    with pytest.raises((ValueError, RuntimeError)):  # same keys, other shapes: torch's error
        vqgan.load_taming_vqgan(tmp_path / "last.ckpt", tmp_path / "wider.yaml")
    gumbel = yaml.safe_load(tiny_config.read_text())
    gumbel["model"]["target"] = "taming.models.vqgan.GumbelVQ"
    (tmp_path / "gumbel.yaml").write_text(yaml.safe_dump(gumbel))
    with pytest.raises(ValueError, match="VQModel"):
        vqgan.read_taming_config(tmp_path / "gumbel.yaml")
    del gumbel["model"]["params"]["ddconfig"]["ch_mult"]
    gumbel["model"]["target"] = "taming.models.vqgan.VQModel"
    (tmp_path / "short.yaml").write_text(yaml.safe_dump(gumbel))
    with pytest.raises(ValueError, match="ddconfig.ch_mult"):
        vqgan.read_taming_config(tmp_path / "short.yaml")


class RunsCodeWhenUnpickled:
    """A pickle that would create a file if it were ever unpickled without weights_only."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoints_are_read_with_weights_only(tmp_path):
    marker = tmp_path / "code_ran.txt"
    torch.save({"state_dict": {}, "hook": RunsCodeWhenUnpickled(marker)}, tmp_path / "evil.ckpt")
    with pytest.raises(ValueError, match="weights_only") as error:
        vqgan.read_checkpoint_state_dict(tmp_path / "evil.ckpt")
    assert not marker.exists()
    assert "open" in str(error.value)  # names what it refused to call
    torch.save({"weights": {}}, tmp_path / "no_state_dict.ckpt")
    with pytest.raises(ValueError, match="state_dict"):
        vqgan.read_checkpoint_state_dict(tmp_path / "no_state_dict.ckpt")


def test_full_imagenet_f16_16384_layout():
    """The official model's key names and sizes, built on the meta device (no memory)."""
    config = vqgan.CONFIG_DIR / "vqgan-imagenet-f16-16384.yaml"
    with torch.device("meta"):
        model = vqgan.vqgan_from_config(config)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["quantize.embedding.weight"] == (16384, 256)
    assert shapes["quant_conv.weight"] == (256, 256, 1, 1)
    assert shapes["post_quant_conv.weight"] == (256, 256, 1, 1)
    assert shapes["encoder.conv_in.weight"] == (128, 3, 3, 3)
    assert shapes["encoder.conv_out.weight"] == (256, 512, 3, 3)  # double_z: false
    assert shapes["decoder.conv_in.weight"] == (512, 256, 3, 3)
    assert shapes["decoder.conv_out.weight"] == (3, 128, 3, 3)
    # attention only at 16 px: the last encoder level (2 blocks), the first decoder level (3)
    assert {k.split(".attn.")[0] for k in shapes if ".attn." in k} == {"encoder.down.4",
                                                                         "decoder.up.4"}
    assert "encoder.down.4.attn.1.proj_out.weight" in shapes
    assert "decoder.up.4.attn.2.q.weight" in shapes and "decoder.mid.attn_1.k.weight" in shapes
    assert {k.split(".")[0] for k in shapes} == {"encoder", "decoder", "quantize", "quant_conv",
                                                 "post_quant_conv"}
    n_parameters = parameter_count(model)
    assert 72e6 < n_parameters < 77e6, n_parameters
    assert model.downsample_factor == 16  # 256 px -> 16 x 16 tokens


def test_straight_through_and_round_trip(tiny_config):
    torch.manual_seed(0)
    model = vqgan.vqgan_from_config(tiny_config).eval()
    z = torch.randn(1, 8, 4, 4, requires_grad=True)
    z_q = model.quantize_straight_through(z)
    indices = model.nearest_codes(z)
    assert torch.allclose(z_q, model.codebook[indices].permute(0, 3, 1, 2), atol=1e-6)
    (z_q * torch.arange(z_q.numel()).view_as(z_q)).sum().backward()
    assert torch.equal(z.grad, torch.arange(z.numel()).view_as(z).float())  # identity backward
    # the nearest code really is the nearest
    distances = torch.cdist(z.detach().permute(0, 2, 3, 1).reshape(-1, 8), model.codebook)
    assert torch.equal(indices.flatten(), distances.argmin(1))

    x = torch.rand(3, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        z_q, indices = model.encode(x)
        assert torch.allclose(model.decode_indices(indices), model.decode(z_q), atol=1e-4)
        assert torch.allclose(model.reconstruct(x), model.decode(z_q), atol=1e-4)
    with pytest.raises(ValueError, match="0..63"):
        model.decode_indices(torch.full((1, 4, 4), 64))
    with pytest.raises(ValueError, match="batch"):
        model.decode_indices(torch.zeros(4, 4, dtype=torch.long))


def test_codebook_usage_counts_and_perplexity():
    usage = vqgan.codebook_usage(torch.tensor([[0, 1], [2, 3]]), n_embed=8)
    assert usage["used"] == 4 and usage["total"] == 8
    assert usage["perplexity"] == pytest.approx(4.0)
    assert vqgan.codebook_usage(torch.zeros(5, dtype=torch.long), 8)["perplexity"] == \
        pytest.approx(1.0)


@pytest.fixture(scope="module")
def course_model():
    torch.manual_seed(0)
    return vqgan.load_course_vqgan(device="cpu")


@pytest.mark.slow
def test_course_vqgan_rebuilds_held_out_shapeworld(course_model):
    """Images it never saw, including colour x shape pairs held out of training."""
    for split in ("test_seen", "test_unseen"):
        images = ShapeWorld(200, split, seed=123, max_objects=3).images
        report = vqgan.reconstruction_report(course_model, images)
        assert report["mse"] < 0.0025, (split, report)  # PSNR above 26 dB
        assert report["color_agreement"] > 0.93, (split, report)
        assert report["used"] >= 0.8 * report["total"], (split, report)
        assert report["perplexity"] > 0.5 * report["total"], (split, report)


@pytest.mark.slow
def test_the_discriminator_made_edges_sharper_at_little_cost(course_model):
    """The shipped VQGAN against the same model trained without its GAN term, held out."""
    without = vqgan.load_course_vqgan(device="cpu", adversarial=False)
    for split in ("test_seen", "test_unseen"):
        images = ShapeWorld(300, split, seed=7, max_objects=3).images
        gan, plain = (vqgan.reconstruction_report(m, images) for m in (course_model, without))
        assert gan["sharpness"] > plain["sharpness"] + 0.04, (split, gan, plain)
        assert gan["psnr"] > plain["psnr"] - 1.0, (split, gan, plain)
    with pytest.raises(TypeError, match="True or False"):
        vqgan.load_course_vqgan(adversarial="no")


def test_course_vqgan_tokens_and_codebook_picture(course_model):
    images = ShapeWorld(300, "test_seen", seed=5, max_objects=3).images
    with torch.no_grad():
        z_q, indices = course_model.encode(vqgan.to_vqgan_range(images[:4].float() / 255))
    f = course_model.downsample_factor
    assert indices.shape == (4, 32 // f, 32 // f) and z_q.shape[1] == course_model.embed_dim

    footprints = vqgan.code_footprints(course_model, images)
    assert footprints.shape == (course_model.n_embed, 3, f, f)
    # a footprint is the mean of the image squares its code stands for
    with torch.no_grad():
        _, all_indices = course_model.encode(vqgan.to_vqgan_range(images.float() / 255))
    squares = images.float().unfold(2, f, f).unfold(3, f, f) / 255  # [N, 3, h, w, f, f]
    most_used = all_indices.flatten().mode().values
    expected = squares.permute(0, 2, 3, 1, 4, 5)[all_indices == most_used].mean(dim=0)
    assert torch.allclose(footprints[most_used], expected, atol=1e-5)
    # the most used code is background: dark and grey (ShapeWorld backgrounds are 10..50)
    assert footprints[most_used].max() < 60 / 255
    picture = vqgan.codebook_grid_image(footprints, columns=16, scale=2)
    rows = -(-course_model.n_embed // 16)
    assert picture.size == (16 * (2 * f + 1) + 1, rows * (2 * f + 1) + 1)
    assert vqgan.decoded_codes(course_model, tokens_per_side=2).shape == \
        (course_model.n_embed, 3, 2 * f, 2 * f)
