"""Issue 15: a clear answer to every bad input.

Each row is something a reviewer tried. Before, it gave a silently wrong result or a raw
traceback from deep inside; now it gets a TypeError (wrong kind of thing) or ValueError
(unusable value) whose message says what to pass instead, or - where going on is right -
a warning that points at the caller's line (here: this file).
"""

import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mmlearn import dalle, shapes, vqgan_clip, zeroshot
from mmlearn.clip import load_clip
from mmlearn.search import ImageIndex, recall_at_k
from mmlearn.vqgan import load_course_vqgan
from mmlearn.vqgan_clip import WeightedPrompt

pytestmark = pytest.mark.usefixtures("one_thread")

ZERO_WIDTH = "\u200b"
LONG = " ".join(["red"] * 2000)  # far more than the course CLIP's 20 tokens (ViT-B-32: 77)


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    """Everything the rows need: the course CLIP, two pictures, an index, files, DALL-E."""
    clip = load_clip("course", verbose=False)
    images = [shapes.draw("red", "circle"), shapes.draw("blue", "square")]
    folder = tmp_path_factory.mktemp("bad_inputs")
    photo = folder / "red.png"
    images[0].save(photo)
    (folder / "empty").mkdir()
    return SimpleNamespace(
        clip=clip, images=images, index=ImageIndex.build(clip, images, progress=False),
        folder=folder, photo=photo, vqgan=load_course_vqgan(),
        dalle=dalle.new_dalle(seed=0, width=32, layers=2, heads=2).eval(),
        probabilities=torch.tensor([[0.2, 0.8], [0.6, 0.4]]))


def classify(w, labels=("red circle", "blue square"), templates=("{}",), images=None):
    return zeroshot.classify(w.clip, w.images if images is None else images, labels, templates)


def draw(w, prompt="a red circle", **settings):
    return dalle.sample(w.dalle, w.vqgan, prompt, n=1, **settings)


def paint(w, prompts="a red star", **settings):
    return vqgan_clip.generate(prompts, w.clip, w.vqgan, **{"steps": 0, **settings})


ERRORS = [
    # ---- zeroshot.classify: silently wrong before
    ("classify('cat')", lambda w: classify(w, "cat"), TypeError,
     r"letter by letter .*Write \['cat'\]"),
    ("labels differing by case", lambda w: classify(w, ["Red circle", "red circle"]),
     ValueError, r"'Red circle' repeated as 'red circle' \(the same but for case or spaces\)"),
    ("labels differing by spaces", lambda w: classify(w, ["red  circle", "red circle"]),
     ValueError, "repeated"),
    ("template without {}", lambda w: classify(w, templates=["a photo"]), ValueError,
     r"must have exactly one '\{\}'.*it has 0 fields"),
    ("template with two {}", lambda w: classify(w, templates=["a {} and a {}"]), ValueError,
     "exactly one"),
    ("labels=None", lambda w: classify(w, None), TypeError, "must be a list of strings"),
    ("None among labels", lambda w: classify(w, ["cat", None]), TypeError,
     r"labels\[1\] must be a string"),
    ("empty label", lambda w: classify(w, ["cat", ""]), ValueError, r"labels\[1\] is blank"),
    ("zero-width label", lambda w: classify(w, ["cat", ZERO_WIDTH * 2]), ValueError,
     "invisible characters"),
    # ---- zeroshot: raw tracebacks before
    ("one PIL image", lambda w: classify(w, images=w.images[0]), TypeError,
     r"for one picture write \[image\]"),
    ("a path as images", lambda w: classify(w, images="red.png"), TypeError, "open_image"),
    ("templates='a {}'", lambda w: classify(w, templates="a {}"), TypeError,
     r"in brackets: \['a \{\}'\]"),
    ("templates=['{0} {1}']", lambda w: classify(w, templates=["{0} {1}"]), ValueError,
     "exactly one.*2 fields"),
    ("template with a lone brace", lambda w: classify(w, templates=["a { b"]), ValueError,
     "not a valid template"),
    ("top_labels k=-1", lambda w: zeroshot.top_labels(w.probabilities, ["a", "b"], k=-1),
     ValueError,
     "k must be at least 1"),
    ("top_labels k=1.5", lambda w: zeroshot.top_labels(w.probabilities, ["a", "b"], k=1.5),
     TypeError,
     "k must be a whole number"),
    ("top_labels labels of another length",
     lambda w: zeroshot.top_labels(w.probabilities, ["a"], k=1),
     ValueError, "one column per label"),
    ("build_classifier('cat')", lambda w: zeroshot.build_classifier(
        w.clip.model, w.clip.tokenizer, "cat"), TypeError, r"classnames .*\['cat'\]"),
    # ---- search: silently wrong before
    ("search('')", lambda w: w.index.search(""), ValueError, "The query is blank"),
    ("search('   ')", lambda w: w.index.search("   "), ValueError, "blank"),
    ("search(zero-width)", lambda w: w.index.search(ZERO_WIDTH), ValueError, "invisible"),
    ("a blank query in a list", lambda w: w.index.search(["red", " "]), ValueError,
     r"queries\[1\] is blank"),
    ("NaN query vector", lambda w: w.index.search(torch.full((w.index.dim,), math.nan)),
     ValueError, "NaN"),
    ("all-zero query vector", lambda w: w.index.search(torch.zeros(w.index.dim)), ValueError,
     "all zeros"),
    ("a path searched as text", lambda w: w.index.search("photos/cat.jpg"), ValueError,
     r"looks like a file path.*open_image\('photos/cat.jpg'\)"),
    ("an existing file searched as text", lambda w: w.index.search(str(w.photo)), ValueError,
     "open_image"),
    ("build from a missing folder", lambda w: ImageIndex.build(w.clip, "no/such/folder/"),
     ValueError, "no file or folder at 'no/such/folder/'"),
    ("build from an empty folder", lambda w: ImageIndex.build(w.clip, w.folder / "empty"),
     ValueError, "Found no readable images"),
    ("build from an empty list", lambda w: ImageIndex.build(w.clip, []), ValueError,
     "Found no readable images"),
    # ---- search: raw tracebacks before
    ("save an empty index", lambda w: ImageIndex(w.clip).save(w.folder / "empty.npz"),
     ValueError, "empty: add images before saving"),
    ("save to a folder", lambda w: w.index.save(w.folder), ValueError,
     "is a folder; give a file name.*index.npz"),
    ("load a folder", lambda w: ImageIndex.load(w.folder), ValueError, "is a folder"),
    ("search(k=2.5)", lambda w: w.index.search("red", k=2.5), TypeError,
     "k must be a whole number"),
    ("search(empty tensor)", lambda w: w.index.search(torch.empty(0, w.index.dim)), ValueError,
     r"Q, D > 0; got shape \(0, "),
    ("search(None)", lambda w: w.index.search(None), TypeError,
     "Search with a text, a PIL image, a vector, or a list of them; got None"),
    ("search(123)", lambda w: w.index.search(123), TypeError, "got an int 123"),
    ("images mixed with paths", lambda w: ImageIndex.build(w.clip, [w.images[0], str(w.photo)]),
     TypeError, "mixes PIL images and file paths"),
    ("batch_size=2.5", lambda w: ImageIndex.build(w.clip, w.images, batch_size=2.5),
     TypeError, "batch_size must be a whole number"),
    ("recall_at_k('red')", lambda w: recall_at_k(w.index, "red", [0]), TypeError,
     "letter by letter"),
    # ---- dalle
    ("only unknown words", lambda w: draw(w, "zzz qqq"), ValueError,
     "no words the model knows .*'zzz'.*It knows: "),
    ("an unknown word that is close", lambda w: draw(w, "rèd"), ValueError,
     r"'rèd' \(did you mean 'red'\?\)"),
    ("temperature=inf", lambda w: draw(w, temperature=math.inf), ValueError,
     "temperature must be a finite number from 0.001 to 100"),
    ("temperature=nan", lambda w: draw(w, temperature=math.nan), ValueError, "finite"),
    ("temperature=0", lambda w: draw(w, temperature=0), ValueError, "from 0.001"),
    ("temperature=-1", lambda w: draw(w, temperature=-1), ValueError, "from 0.001"),
    ("temperature='hot'", lambda w: draw(w, temperature="hot"), TypeError, "a number"),
    ("top_k=2.5", lambda w: draw(w, top_k=2.5), TypeError, "top_k .* must be a whole number"),
    ("top_k=0", lambda w: draw(w, top_k=0), ValueError, "top_k .* at least 1"),
    ("n=2.5", lambda w: dalle.sample(w.dalle, w.vqgan, "a red circle", n=2.5), TypeError,
     "whole number"),
    ("a list to sample", lambda w: draw(w, ["a red circle"]), TypeError,
     "sample_many"),
    ("sample_many(None)", lambda w: dalle.sample_many(w.dalle, w.vqgan, None), TypeError,
     "list of prompts"),
    ("rerank(keep=0)", lambda w: dalle.rerank(w.clip, draw(w), keep=0), ValueError,
     "keep .* at least 1"),
    # ---- generate (VQGAN+CLIP)
    ("weight 1e9", lambda w: paint(w, "red star:1e9"), ValueError,
     "between -10 and 10"),
    ("weight -11", lambda w: vqgan_clip.parse_prompts("red star | blue:-11"), ValueError,
     "part 2 .* between -10 and 10"),
    ("all weights negative", lambda w: paint(w, "red star:-1 | blue:-0.5"), ValueError,
     "No part of the prompt has a positive weight"),
    ("a WeightedPrompt weighing nan", lambda w: paint(w, [WeightedPrompt("red", math.nan)]),
     ValueError, "finite"),
    ("an image prompt weighing 1e9", lambda w: paint(w, image_prompts=[(w.images[0], 1e9)]),
     ValueError, "image prompt 0"),
    ("one image prompt, not a list", lambda w: paint(w, image_prompts=w.images[0]), TypeError,
     r"\[image\]"),
    ("generate(None)", lambda w: paint(w, None), TypeError, "prompts must be a string"),
    ("generate(['red star'])", lambda w: paint(w, ["red star", "blue circle"]), TypeError,
     r"one string joined by '\|', such as 'red star \| blue circle'"),
    ("steps=-1", lambda w: paint(w, steps=-1), ValueError, "steps must be at least 0"),
    ("frame_every=0", lambda w: paint(w, frame_every=0), ValueError,
     "frame_every must be at least 1"),
    ("cutouts=2.5", lambda w: paint(w, cutouts=2.5), TypeError, "cutouts must be a whole"),
    ("lr=nan", lambda w: paint(w, lr=math.nan), ValueError, "lr must be a finite number"),
    ("a misspelt setting", lambda w: paint(w, stpes=10), TypeError,
     r"'stpes' \(did you mean 'steps'\?\)"),
]


@pytest.mark.parametrize("call, error, message", [row[1:] for row in ERRORS],
                         ids=[row[0] for row in ERRORS])
def test_a_bad_input_gets_a_clear_error(w, call, error, message):
    with pytest.raises(error, match=message):
        call(w)


WARNINGS = [
    ("a 2,000-word query", lambda w: w.index.search(LONG), r"query 'red red.*' has 2002 tokens; "
     r"the text encoder reads only the first 20, the rest is cut \(1982 tokens\)"),
    ("an over-long label", lambda w: classify(w, [LONG, "blue square"]),
     r"label .* the rest is cut \(1982 tokens\)"),
    ("a 300-word prompt", lambda w: paint(w, " ".join(["star"] * 300)),
     r"prompt 'star star.* the rest is cut \(282 tokens\)"),
    ("unknown words", lambda w: draw(w, "a purple hexagon"),
     r"does not know 'hexagon' in 'a purple hexagon'"),
    ("an unknown word with a close match", lambda w: draw(w, "a rèd circle"),
     r"does not know 'rèd' \(did you mean 'red'\?\)"),
    ("several unknown words", lambda w: draw(w, "a big zzz circle qqq"),
     r"does not know 'zzz', 'qqq' in"),
]


@pytest.mark.parametrize("call, message", [row[1:] for row in WARNINGS],
                         ids=[row[0] for row in WARNINGS])
def test_going_on_is_right_but_a_warning_points_at_the_callers_line(w, call, message):
    with pytest.warns(UserWarning, match=message) as record:
        call(w)
    ours = [r for r in record if re.search(message, str(r.message))]
    assert {Path(r.filename) for r in ours} == {Path(__file__)}


# ---------------------------------------------------------------- what still works


def test_good_inputs_still_work(w):
    probabilities = classify(w, ("red circle", "blue square"), ["a picture of a {}", "a {0}"])
    assert probabilities.argmax(dim=1).tolist() == [0, 1]
    assert [hits[0].id for hits in w.index.search(["red circle", "blue square"], k=1)] == [0, 1]
    assert w.index.search([w.images[1]], k=1)[0][0].id == 1
    assert len(w.index.search(w.index.vectors[0].float(), k=1)) == 1
    tokenizer = w.dalle.tokenizer
    assert tokenizer.words("A rèd,  BIG" + ZERO_WIDTH + " circle!") == ["a", "rèd", "big", "circle"]
    assert tokenizer.words("r" + ZERO_WIDTH + "ed") == ["red"]  # invisible characters are dropped
    assert vqgan_clip.parse_prompts("a:10 | b:-10")[1].weight == -10


def test_steps_0_decodes_the_start_image(w):
    result = paint(w, "a red star | blue:-0.5", steps=0)
    assert len(result.frames) == 1 and result.losses == []
