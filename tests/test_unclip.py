"""The tiny unCLIP: slerp, prior, decoder checkpoints, and the shipped weights' quality."""

import pytest
import torch

from mmlearn import diffusion, evaluation, shapes, unclip

pytestmark = pytest.mark.usefixtures("one_thread")


def test_slerp_stays_on_the_sphere_and_hits_both_ends():
    g = torch.Generator().manual_seed(0)
    a, b = torch.nn.functional.normalize(torch.randn(2, 64, generator=g), dim=-1)
    path = unclip.slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path.norm(dim=-1), torch.ones(5), atol=1e-5)
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    middle = path[2]
    assert (middle @ a).item() == pytest.approx((middle @ b).item(), abs=1e-5)


def test_prior_outputs_unit_vectors_and_its_loss_is_one_minus_cosine():
    torch.manual_seed(0)
    prior = unclip.PriorMLP(dim=8, hidden=16)
    text = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    image = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    out = prior(text)
    assert torch.allclose(out.norm(dim=-1), torch.ones(5), atol=1e-5)
    by_hand = (1 - (out * image).sum(-1)).mean()
    assert unclip.prior_loss(prior, text, image).item() == pytest.approx(by_hand.item())
    losses = unclip.train_prior(prior, text, image, steps=60, batch_size=5, lr=1e-2)
    assert losses[-1] < losses[0]


def test_decoder_checkpoint_round_trip():
    config = unclip.DecoderConfig(widths=(16, 32), emb_dim=32, cond_dim=8)
    torch.manual_seed(0)
    unet = config.new_unet()
    unet2, config2 = unclip.decoder_from_checkpoint(unclip.decoder_checkpoint(unet, config))
    assert config2 == config
    x, t, c = torch.randn(2, 16, 8, 8), torch.tensor([3, 100]), torch.randn(2, 8)
    with torch.no_grad():
        assert torch.allclose(unet(x, t, c), unet2(x, t, c), atol=1e-2)


def test_decoder_loss_uses_scaled_latents():
    config = unclip.DecoderConfig(widths=(16, 32), emb_dim=32, cond_dim=8, cond_noise=0.0)
    unet = config.new_unet()  # head starts at zero: the loss is the noise's mean square
    schedule = diffusion.cosine_schedule(config.timesteps)
    latents = torch.randn(64, 16, 8, 8) * config.latent_scale
    loss = unclip.decoder_loss(unet, latents, torch.randn(64, 8), config, schedule,
                               torch.Generator().manual_seed(0))
    assert loss.item() == pytest.approx(1.0, abs=0.03)


def test_train_decoder_lowers_the_loss_and_runs_short_under_the_grader(not_grading, tmp_path):
    """The lesson's live run (lesson 06) trains with ``train_decoder``: its loss must fall
    well below its start, and under the course's grader the run stops at ``graded_steps``."""
    from mmlearn.exercises import grading

    config = unclip.DecoderConfig(widths=(16, 32), emb_dim=32, cond_dim=8)
    latents = torch.zeros(8, 16, 8, 8)
    latents[:, :4, 2:6, 2:6] = config.latent_scale       # one picture, eight times
    cond = torch.nn.functional.normalize(torch.ones(8, 8), dim=1)
    torch.manual_seed(0)
    _, losses = unclip.train_decoder(config.new_unet(), latents, cond, config, steps=80,
                                     batch_size=8, lr=1e-2, warmup=5)
    assert len(losses) == 80
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10
    grading.start_grading(tmp_path / "log.jsonl")
    _, graded = unclip.train_decoder(config.new_unet(), latents, cond, config, steps=80,
                                     batch_size=8, graded_steps=3)
    assert len(graded) == 3
    _, whole = unclip.train_decoder(config.new_unet(), latents, cond, config, steps=4,
                                    batch_size=8, graded_steps=None)
    assert len(whole) == 4


@pytest.fixture(scope="module")
def shipped():
    return unclip.load_course_unclip()


def test_shipped_scale_zero_ignores_the_embedding(shipped):
    a, b = shipped.text_to_image_embedding(["a red star", "a blue circle"])
    first = shipped.decode(a[None], n=2, scale=0.0, steps=10, seed=3)
    second = shipped.decode(b[None], n=2, scale=0.0, steps=10, seed=3)
    assert torch.equal(first, second)
    assert not torch.equal(shipped.decode(a[None], n=2, scale=3.0, steps=10, seed=3),
                           shipped.decode(b[None], n=2, scale=3.0, steps=10, seed=3))


def test_shipped_variations_keep_color_and_shape(shipped):
    from mmlearn.judge import judge_images

    picture = torch.from_numpy(shapes.render([{"shape": "star", "rgb": shapes.COLORS["orange"],
                                               "x": 16, "y": 16, "radius": 7}]))
    drawn = shipped.variations(picture.permute(2, 0, 1), n=4)
    verdicts = judge_images(drawn.images)
    assert drawn.images.shape == (4, 3, 32, 32)
    assert sum(v.color == "orange" and v.shape == "star" for v in verdicts) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("prior", ["diffusion", "regression"])
def test_shipped_unclip_draws_held_out_combinations(shipped, prior):
    """The 7 colour x shape pairs never seen in training, 8 samples each (DDIM 25, scale 3,
    seed 0), with each shipped prior: the issue's bar for shape on held-out pairs is 0.85
    (measured: diffusion prior 0.875, colour 0.929; regression prior 0.929, colour 0.982).
    About 1.5 s each on one thread."""
    model = unclip.load_course_unclip(shipped.clip, shipped.vqgan, prior=prior)
    prompts = [shapes.with_articles(f"a {c} {s}") for c, s in sorted(shapes.HELD_OUT)]
    report = evaluation.unclip_hit_rates(model, prompts, n=8)
    assert report["unseen"]["color"] >= 0.9
    assert report["unseen"]["shape"] >= 0.85


def test_decode_takes_one_embedding_per_picture_and_refuses_a_count_that_disagrees(shipped):
    embeddings = shipped.text_to_image_embedding(["a red star", "a blue circle"], n=3, seed=2)
    assert embeddings.shape == (2, 3, 64)
    assert not torch.allclose(embeddings[0, 0], embeddings[0, 1])   # the diffusion prior's draws
    pictures = shipped.decode(embeddings, n=3, steps=4)
    first = shipped.decode(embeddings[:1, :1].expand(1, 3, 64), n=3, steps=4)
    assert pictures.shape == (6, 3, 32, 32) and torch.equal(pictures[0], first[0])
    with pytest.raises(ValueError, match="pass n=3"):
        shipped.decode(embeddings, n=8)
    regression = unclip.load_course_unclip(shipped.clip, shipped.vqgan, prior="regression")
    same = regression.text_to_image_embedding(["a red star"], n=3)
    assert torch.equal(same[0, 0], same[0, 2])                        # one guess, repeated
    with pytest.raises(ValueError, match="prior must be .diffusion. or .regression."):
        unclip.load_course_unclip(shipped.clip, shipped.vqgan, prior="transformer")


def test_a_prompt_draws_the_same_pictures_whatever_is_drawn_with_it(shipped):
    alone = shipped.generate(["a green square"], n=3, steps=5)[0].images
    together = shipped.generate(["a red star", "a green square"], n=3, steps=5,
                                batch_prompts=2)[1].images
    assert alone.shape == (3, 3, 32, 32) and torch.equal(alone, together)


@pytest.mark.parametrize("call, error, says", [
    (lambda m: m.generate([""]), ValueError, "blank"),
    (lambda m: m.generate(["   "]), ValueError, "blank"),
    (lambda m: m.generate({"a red star"}), TypeError, "not a set"),
    (lambda m: m.generate(["a red star"], scale=float("nan")), ValueError, "scale"),
    (lambda m: m.generate(["a red star"], scale=1e6), ValueError, "scale"),
    (lambda m: m.generate(["a red star"], batch_prompts=-1), ValueError, "batch_prompts"),
    (lambda m: m.generate(["a red star"], n=0), ValueError, "n must be at least 1"),
    (lambda m: m.generate(["a red star"], n=10**7), ValueError, "several calls"),
    (lambda m: m.generate(["a red star"], seed=None), TypeError, "seed"),
    (lambda m: m.generate(["a red star"], seed=-1), ValueError, "seed"),
    (lambda m: m.generate(["a red star"], steps=10**6), ValueError, "steps"),
    (lambda m: m.generate(["a red star"], sampler="euler"), ValueError, "sampler"),
    (lambda m: m.interpolate(torch.zeros(64), torch.ones(64), k=0), ValueError, "k must"),
    (lambda m: m.variations("star.png"), TypeError, "PIL image or a uint8 tensor"),
    (lambda m: m.variations(torch.rand(3, 32, 32)), TypeError, "uint8"),
    (lambda m: m.decode(torch.full((1, 64), float("nan"))), ValueError, "NaN"),
])
def test_unclip_refuses_what_would_draw_nonsense_or_fail_deep_inside(shipped, call, error, says):
    with pytest.raises(error, match=says):
        call(shipped)


def test_unclip_takes_numpy_numbers_and_pil_pictures(shipped):
    import numpy as np
    from PIL import Image

    drawn = shipped.generate(["a red star"], n=np.int64(2), steps=np.int64(3),
                             seed=np.int64(1), scale=np.float32(2.0))[0]
    assert drawn.images.shape == (2, 3, 32, 32)
    picture = Image.fromarray(drawn.images[0].permute(1, 2, 0).numpy()).convert("RGBA")
    assert shipped.variations(picture, n=1, steps=3).images.shape == (1, 3, 32, 32)


def test_a_prompt_past_the_text_encoders_context_warns(shipped):
    with pytest.warns(UserWarning, match="reads only"):
        shipped.generate([" ".join(["a big red star on the left"] * 12)], n=1, steps=2)
