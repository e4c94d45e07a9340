"""The emulated CUDA device (tests/accelerator/emulated.py) that the lessons run under in CI.

It must catch what a real GPU catches (a model on the GPU fed a CPU tensor, numpy asked
of a GPU tensor) and let through what a real GPU lets through, or it raises false alarms.
"""

import numpy as np
import pytest
import torch
from accelerator import emulated

from mmlearn import config


@pytest.fixture
def gpu(monkeypatch):
    monkeypatch.delenv(config.DEVICE_VARIABLE, raising=False)
    with emulated.cuda():
        yield torch.device("cuda")


def small_model():
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))


def test_pick_device_chooses_cuda(gpu):
    assert torch.cuda.is_available() and torch.cuda.device_count() == 1
    assert config.pick_device() == torch.device("cuda")
    assert config.describe_device().startswith("Device: cuda (an NVIDIA GPU was found")


def test_a_cuda_model_fed_a_cpu_tensor_raises_pytorchs_error(gpu):
    model = small_model().to(config.pick_device())
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device, but "
                                           "found at least two devices, cuda:0 and cpu!"):
        model(torch.randn(2, 3))


@pytest.mark.parametrize("to_numpy", [lambda t: t.numpy(), np.asarray])
def test_numpy_of_a_cuda_tensor_raises_pytorchs_error(gpu, to_numpy):
    with pytest.raises(TypeError, match=r"can't convert cuda:0 device type tensor to numpy. "
                                        r"Use Tensor.cpu\(\) to copy"):
        to_numpy(torch.ones(3, device="cuda") * 2)


def test_moved_tensors_say_where_they_are_and_pass_it_on(gpu):
    x = torch.ones(2, 3)
    for moved in (x.to(gpu), x.to("cuda"), x.cuda(), x.to(0), x.to(device="cuda"),
                  x.to("cuda", torch.float16), torch.zeros(2, device="cuda"),
                  torch.arange(3, device=gpu), torch.randn(2, generator=torch.Generator("cuda"),
                                                           device="cuda")):
        assert moved.device == torch.device("cuda", 0) and moved.is_cuda
        assert (moved * 2).sum().device.type == "cuda"      # results inherit the device
        assert torch.zeros_like(moved).device.type == "cuda"
    assert x.device.type == "cpu" and not x.is_cuda           # the original stays put
    assert x.cuda().cpu().device.type == "cpu"


def test_legal_code_does_not_raise(gpu):
    model = small_model().to(gpu)
    out = model(torch.randn(5, 3).to(gpu))
    assert out.device.type == "cuda"
    assert (out * torch.tensor(2.0)).device.type == "cuda"   # 0-dim CPU tensors may join
    picked = out[torch.tensor([0, 2])]                         # CPU indices may index
    out[torch.tensor([1])] = 0.0
    assert picked.device.type == "cuda" and out[torch.tensor([True] * 5)].shape == (5, 4)
    assert out.detach().cpu().numpy().shape == (5, 4)
    assert out.sum().item() == pytest.approx(out.sum().item()) and len(out.tolist()) == 5
    host = torch.empty(5, 4)
    host.copy_(out)                                            # copies cross devices
    assert host.device.type == "cpu"


def test_training_steps_run_on_the_emulated_gpu(gpu):
    model = small_model().to(gpu)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    loss = model(torch.randn(4, 3, device=gpu)).pow(2).mean()
    loss.backward()
    optimizer.step()
    parameter = next(model.parameters())
    assert parameter.device.type == "cuda" and parameter.grad.device.type == "cuda"
    assert isinstance(parameter, torch.nn.Parameter)
    model.cpu()
    assert next(model.parameters()).device.type == "cpu"
    model(torch.randn(2, 3))                                   # back on the CPU: CPU input


def test_mixed_tensors_raise_outside_models_too(gpu):
    with pytest.raises(RuntimeError, match="same device"):
        torch.cat([torch.ones(2, device="cuda"), torch.ones(2)])
    with pytest.raises(RuntimeError, match="same device"):
        torch.nn.functional.cross_entropy(torch.randn(2, 3, device="cuda"), torch.tensor([0, 1]))


def test_disable_restores_everything(monkeypatch):
    monkeypatch.delenv(config.DEVICE_VARIABLE, raising=False)
    before = (torch.cuda.is_available, torch.Generator, torch.nn.Module.to,
              torch.nn.Parameter.__new__, torch.cuda.is_available())
    with emulated.cuda():
        tagged = torch.ones(2, device="cuda")
    assert (torch.cuda.is_available, torch.Generator, torch.nn.Module.to,
            torch.nn.Parameter.__new__, torch.cuda.is_available()) == before
    assert not emulated.is_enabled() and tagged.device.type == "cpu"
    assert config.pick_device().type == ("cuda" if before[-1] else "cpu")
    tagged.numpy()
    torch.cat([tagged, torch.ones(2)])


# ---------------------------------------- mmlearn with its models on the (emulated) GPU
# Functions that take a model move their inputs to the model's device, and give back on
# the CPU what NumPy and matplotlib read; CPU generators seed work on any device.

def test_zero_shot_follows_the_models_device(gpu):
    from mmlearn import shapes, train, zeroshot
    from mmlearn.clip import load_clip, to_model_input

    clip = load_clip("course", verbose=False)
    data = shapes.ShapeWorld(24, "test_seen", seed=1)
    classifier = zeroshot.build_classifier(clip.model, clip.tokenizer, shapes.CLASSES)
    assert classifier.device.type == "cuda"
    probabilities = zeroshot.predict_proba(
        clip.model, to_model_input(data.images, clip.model), classifier)
    assert probabilities.device.type == "cpu"
    zeroshot.confusion_matrix(probabilities.argmax(dim=1), data.labels, len(shapes.CLASSES))
    assert 0 <= zeroshot.dataset_accuracy(clip.model, clip.tokenizer, data) <= 1
    tokens = train.tokenize_once(clip.tokenizer, data.captions)
    train.batch_loss(clip.model, data, torch.arange(8), tokens)


def test_diffusion_unclip_and_dalle_follow_the_models_device(gpu):
    from mmlearn import dalle, diffusion, unclip

    unet = diffusion.TinyUNet(in_channels=4, widths=(16,), cond_dim=8, emb_dim=16).to(gpu)
    schedule, seeded = diffusion.cosine_schedule(20), torch.Generator().manual_seed(0)
    x = diffusion.sample(unet, torch.randn(2, 8), (4, 8, 8), schedule, 3, 2.0, "ddpm", seeded)
    assert x.device.type == "cuda"
    diffusion.diffusion_loss(unet, torch.randn(2, 4, 8, 8), torch.randn(2, 8), schedule, 0.5,
                             seeded).backward()
    prior = unclip.PriorMLP(dim=8, hidden=16).to(gpu)
    unclip.train_prior(prior, torch.randn(8, 8), torch.randn(8, 8), steps=2, batch_size=4)
    assert prior.sample(torch.randn(2, 8), n=3).device.type == "cpu"
    from mmlearn import diffusion_prior
    drawing = diffusion_prior.DiffusionPrior(dim=8, width=16, blocks=1, emb_dim=8,
                                             timesteps=10).to(gpu)
    diffusion_prior.train_prior(drawing, torch.randn(8, 8), torch.randn(8, 8), steps=2,
                                batch_size=4)
    drawn = drawing.sample(torch.randn(2, 8), n=3, steps=3)
    assert drawn.shape == (2, 3, 8) and drawn.device.type == "cpu"
    model = dalle.new_dalle(seed=0, width=32, layers=1, heads=2).to(gpu)
    text = model.tokenizer(["a red circle"])
    dalle.dalle_loss(model, text, torch.zeros(1, model.config.image_length, dtype=torch.long),
                     model.tokenizer.pad_id)
