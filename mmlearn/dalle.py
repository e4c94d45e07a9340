"""A tiny DALL-E: text tokens and image tokens in one sequence, one autoregressive transformer.

DALL-E 1 (Ramesh et al., 2021) turns a caption into up to 256 text tokens and a 256x256
image into a 32x32 grid of 1024 image tokens (a discrete VAE's codebook indices), writes
them one after the other as a single sequence, and trains a GPT-style transformer to
predict every next token. To draw a picture, give it the text and let it continue the
sequence, one image token at a time; a decoder turns the tokens back into pixels.

This module builds the same thing at ShapeWorld scale:

    text  "a big blue triangle"  -> 12 word tokens (padded)      \\  one sequence of
    image 32x32 px -> course VQGAN -> 8x8 = 64 codes (0..255)    /   12 + 64 = 76 tokens

    >>> from mmlearn import dalle
    >>> from mmlearn.clip import load_clip
    >>> from mmlearn.vqgan import load_course_vqgan
    >>> model, vqgan = dalle.load_course_dalle(), load_course_vqgan()
    >>> result = dalle.sample(model, vqgan, "a big blue triangle", n=8)
    >>> result.images                      # uint8 [8, 3, 32, 32]
    >>> best = dalle.rerank(load_clip("course"), result, keep=2)
    >>> best.scores                        # CLIP's cosine similarities, best first

The pieces, in reading order: ``WordTokenizer`` (text -> ids), ``CausalSelfAttention``
and ``Block`` (the transformer), ``TinyDalle`` (embeddings per modality, two output
heads), ``dalle_loss`` (image tokens weigh 7/8, text tokens 1/8, as in DALL-E),
``top_k_filter`` and ``sample_image_tokens`` (temperature, top-k, a key/value cache),
``sample`` / ``sample_many`` and ``rerank`` (best-of-N with CLIP, as DALL-E did with
512 samples); ``mmlearn.evaluation.dalle_hit_rates`` measures them with an independent judge.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmlearn import checks, shapes
from mmlearn.checkpoints import load_checkpoint, shipped_path
from mmlearn.config import model_device, one_cpu_thread, pick_device
from mmlearn.images import Drawn, float_to_uint8

COURSE_WEIGHTS = "dalle_shapeworld.safetensors"
PAD, UNK = "<pad>", "<unk>"

# ---------------------------------------------------------------------------- text tokens


def shapeworld_words() -> list[str]:
    """Every word ShapeWorld's captions use, sorted: the tiny DALL-E's text vocabulary.

    DALL-E used a BPE vocabulary of 16384 sub-words for open-ended web captions. Our
    captions come from a few templates, so whole words are enough (and easy to read).
    """
    text = " ".join([*shapes.TEMPLATES, *shapes.POSITION_PHRASES.values(), *shapes.COLORS,
                     *shapes.SHAPES, *shapes.SIZES, "an and"])
    words = set(re.findall(r"[a-z]+", text.lower())) - {"color", "shape", "size", "where"}
    return sorted(words)


class WordTokenizer:
    """Text -> a fixed number of word ids, padded with <pad>; unknown words become <unk>.

    ``length`` is how many text positions the model has (DALL-E 1: 256). Longer prompts
    are cut to ``length`` words with a warning that says what was dropped. Words are
    lower-cased and everything that is not a letter separates words; letters of any
    alphabet count (``"rèd"`` is one word - an unknown one - not ``"r d"``), and
    invisible characters such as zero-width spaces are dropped.
    """

    def __init__(self, words: list[str], length: int = 12):
        if PAD in words or UNK in words:
            raise ValueError(f"{PAD} and {UNK} are added by the tokenizer; leave them out.")
        self.vocabulary = [PAD, UNK, *words]
        self.ids = {word: i for i, word in enumerate(self.vocabulary)}
        self.length = length

    @property
    def pad_id(self) -> int:
        return self.ids[PAD]

    @property
    def unk_id(self) -> int:
        return self.ids[UNK]

    def __len__(self) -> int:
        return len(self.vocabulary)

    def words(self, text: str) -> list[str]:
        """The words of a prompt, as the tokenizer sees them (no truncation here)."""
        if not isinstance(text, str):
            raise TypeError(f"A prompt must be a string such as 'a big blue triangle'; got "
                            f"{checks.describe(text)}.")
        # Any whitespace (newline, tab) separates words first: visible() drops control
        # characters, and "red\ncircle" would otherwise become the one word "redcircle".
        spaced = "".join(" " if ch.isspace() else ch for ch in text)
        return re.findall(r"[^\W\d_]+", checks.visible(spaced).lower())  # runs of letters

    def encode(self, text: str, warn: bool = True) -> list[int]:
        """One prompt -> ``length`` ids: words, unknown words as <unk>, <pad> to fill up."""
        words = self.words(text)
        if not words:
            raise ValueError(f"The prompt {text!r} has no words; write what to draw, "
                             f"e.g. 'a big blue triangle'.")
        if len(words) > self.length:
            if warn:
                checks.warn(f"The prompt has {len(words)} words but the model reads only "
                            f"{self.length}: kept {' '.join(words[:self.length])!r}, dropped "
                            f"{' '.join(words[self.length:])!r}.")
            words = words[:self.length]
        ids = [self.ids.get(word, self.unk_id) for word in words]
        return ids + [self.pad_id] * (self.length - len(ids))

    def __call__(self, texts: str | list[str], warn: bool = True) -> torch.Tensor:
        """A prompt or a list of prompts -> a LongTensor [B, length]."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise ValueError("Give at least one prompt.")
        return torch.tensor([self.encode(text, warn) for text in texts], dtype=torch.long)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        """Ids -> the words they stand for, without the padding."""
        if isinstance(ids, torch.Tensor):
            checks.tensor(ids, "ids", ndim=1, dtype="integer",
                          example="of one prompt's ids, e.g. tokenizer('a red circle')[0]")
            ids = ids.tolist()
        if isinstance(ids, str) or not isinstance(ids, list | tuple):
            raise TypeError(f"ids must be a list or a 1-D tensor of word ids, e.g. "
                            f"tokenizer('a red circle')[0]; got {checks.describe(ids)}.")
        for i in ids:
            checks.integer(i, "each id")
            if not 0 <= i < len(self.vocabulary):
                raise ValueError(f"ids holds {i}, not a word id: ids run from 0 to "
                                 f"{len(self.vocabulary) - 1} ({len(self.vocabulary)} words).")
        return " ".join(self.vocabulary[i] for i in ids if i != self.pad_id)

    def unknown_words(self, text: str) -> list[str]:
        """The words of a prompt the model has never seen (they all become <unk>)."""
        return [word for word in self.words(text) if word not in self.ids]


# ---------------------------------------------------------------------------- the transformer


@dataclass
class DalleConfig:
    """The sizes that define a tiny DALL-E (stored in its checkpoint next to the weights)."""

    text_length: int = 12         # text positions (DALL-E 1: 256)
    image_vocab: int = 256        # VQGAN codebook size (DALL-E 1: 8192)
    image_length: int = 64        # 8x8 image tokens (DALL-E 1: 32x32 = 1024)
    width: int = 128              # size of every token's vector (DALL-E 1: 3968)
    layers: int = 4               # transformer blocks (DALL-E 1: 64)
    heads: int = 4                # attention heads per block (DALL-E 1: 62)

    @property
    def sequence_length(self) -> int:
        return self.text_length + self.image_length


def causal_mask(length: int) -> torch.Tensor:
    """``mask[i, j]`` is True when position i may look at position j, that is j <= i.

    This is what makes the transformer a *generator*: a token is predicted from the
    tokens before it only, so at sampling time nothing from the future is needed.
    """
    length = checks.integer(length, "length", minimum=0)
    checks.memory_budget(length * length, f"A causal mask of {length} x {length}")
    return torch.ones(length, length, dtype=torch.bool).tril()


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position sees only itself and the past.

    ``cache`` holds the keys and values of earlier positions (see ``sample_image_tokens``):
    when tokens arrive one at a time, the past keys and values do not change, so keeping
    them saves recomputing the whole sequence for every new token.
    """

    def __init__(self, config: DalleConfig):
        super().__init__()
        self.heads = config.heads
        self.to_qkv = nn.Linear(config.width, 3 * config.width)
        self.out = nn.Linear(config.width, config.width)
        self.register_buffer("mask", causal_mask(config.sequence_length), persistent=False)

    def forward(self, x: torch.Tensor, cache: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        batch, new, width = x.shape  # `new` positions arrive now, after those in the cache
        q, k, v = self.to_qkv(x).split(width, dim=2)
        q, k, v = (t.view(batch, new, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        total = k.shape[2]
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])  # [B, heads, new, total]
        scores = scores.masked_fill(~self.mask[total - new:total, :total], float("-inf"))
        y = scores.softmax(dim=-1) @ v
        y = y.transpose(1, 2).reshape(batch, new, width)
        return self.out(y), (k, v)


class Block(nn.Module):
    """A GPT block: attention then a 2-layer MLP, each with a residual and a LayerNorm before."""

    def __init__(self, config: DalleConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.width)
        self.attention = CausalSelfAttention(config)
        self.norm2 = nn.LayerNorm(config.width)
        self.mlp = nn.Sequential(nn.Linear(config.width, 4 * config.width), nn.GELU(),
                                 nn.Linear(4 * config.width, config.width))

    def forward(self, x: torch.Tensor, cache: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        attended, cache = self.attention(self.norm1(x), cache)
        x = x + attended
        return x + self.mlp(self.norm2(x)), cache


class TinyDalle(nn.Module):
    """Decoder-only transformer over [text tokens, image tokens], with its tokenizer.

    ``words`` is the text vocabulary (see ``shapeworld_words``). Each modality has its own
    token embedding and its own position embedding (text word 3 and image token 3 are
    different things), then both share one stack of blocks. Two heads read the output:
    position i predicts token i + 1, so the text positions predict the next word, and the
    last text position and the image positions predict the image tokens.
    """

    def __init__(self, config: DalleConfig, words: list[str]):
        super().__init__()
        self.config = config
        self.tokenizer = WordTokenizer(words, config.text_length)
        text_vocab = len(self.tokenizer)
        self.text_embedding = nn.Embedding(text_vocab, config.width)
        self.text_position = nn.Embedding(config.text_length, config.width)
        self.image_embedding = nn.Embedding(config.image_vocab, config.width)
        self.image_position = nn.Embedding(config.image_length, config.width)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.width)
        self.text_head = nn.Linear(config.width, text_vocab)
        self.image_head = nn.Linear(config.width, config.image_vocab)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)  # GPT-2's small initialisation
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def embed_text(self, text: torch.Tensor) -> torch.Tensor:
        """Text ids [B, text_length] -> vectors [B, text_length, width]."""
        self._check_ids(text, "text", self.config.text_length, len(self.tokenizer),
                        "tokenizer(['a red circle'])")
        positions = torch.arange(text.shape[1], device=text.device)
        return self.text_embedding(text) + self.text_position(positions)

    def embed_image(self, image: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Image tokens [B, n] at image positions start..start+n-1 -> vectors [B, n, width]."""
        start = checks.integer(start, "start", minimum=0)
        self._check_ids(image, "image", self.config.image_length - start, self.config.image_vocab,
                        "token[:, None]")
        positions = torch.arange(start, start + image.shape[1], device=image.device)
        return self.image_embedding(image) + self.image_position(positions)

    def transform(self, x: torch.Tensor, caches: list | None = None) -> tuple[torch.Tensor, list]:
        """Run embedded tokens through all blocks; returns outputs and each block's cache."""
        width, length = self.config.width, self.config.sequence_length
        checks.tensor(x, "x", dtype="float", shape=(None, None, width),
                      example=f"of embedded tokens [B, n, {width}] (model.embed_text(text))")
        cached = 0
        if caches is not None:
            if not isinstance(caches, list | tuple) or len(caches) != len(self.blocks):
                raise TypeError(f"caches must be the list of {len(self.blocks)} caches that the "
                                f"last transform returned (or None); got "
                                f"{checks.describe(caches)}.")
            cached = 0 if caches[0] is None else caches[0][0].shape[2]  # keys [B, h, n, d]
        if cached + x.shape[1] > length:
            raise ValueError(f"x: {cached} cached + {x.shape[1]} new positions is more than the "
                             f"{length} this model has (text and image tokens together).")
        caches = caches or [None] * len(self.blocks)
        new_caches = []
        for block, cache in zip(self.blocks, caches):
            x, cache = block(x, cache)
            new_caches.append(cache)
        return self.norm(x), new_caches

    @staticmethod
    def _check_ids(ids, name: str, longest: int, vocabulary: int, example: str) -> None:
        """Token ids [B, n] with n <= longest (shape and dtype only: it runs for every token;
        an id past ``vocabulary`` is named by torch's IndexError)."""
        checks.tensor(ids, name, ndim=2, dtype="integer", example=f"of ids [B, n], e.g. {example}")
        if ids.shape[1] > longest:
            raise ValueError(f"{name} has {ids.shape[1]} positions, more than the {longest} "
                             f"left for it; got {checks.describe_tensor(ids)}.")

    def forward(self, text: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits for the next token everywhere: (text [B, Lt-1, V_text], image [B, n+1, V_image]).

        ``image`` holds the first n image tokens (n may be 0). For training pass all but
        the last token, so that the image logits line up with all ``image_length`` targets.
        """
        if image.shape[1] >= self.config.image_length:
            raise ValueError(f"Pass at most {self.config.image_length - 1} image tokens: the "
                             f"last one is only ever a target.")
        hidden, _ = self.transform(torch.cat([self.embed_text(text), self.embed_image(image)], 1))
        length = text.shape[1]
        return self.text_head(hidden[:, :length - 1]), self.image_head(hidden[:, length - 1:])


def dalle_loss(model: TinyDalle, text: torch.Tensor, image: torch.Tensor, pad_id: int,
               text_weight: float = 1 / 8) -> tuple[torch.Tensor, dict]:
    """Next-token cross-entropy over the whole sequence, image tokens weighted more.

    DALL-E weighted the text loss 1/8 and the image loss 7/8: the point of the model is
    the image; predicting the caption too is a cheap extra signal. Padding is not a
    word, so it is never a text target. ``image`` holds all image tokens [B, 64].
    """
    checks.instance(model, "model", TinyDalle, "a TinyDalle, e.g. dalle.new_dalle()")
    config = model.config
    checks.tensor(text, "text", dtype="integer", shape=(None, config.text_length),
                  example=f"of word ids [B, {config.text_length}]")
    checks.tensor(image, "image", dtype="integer", shape=(None, config.image_length),
                  example=f"of all image tokens [B, {config.image_length}]")
    checks.same_batch({"text": text, "image": image})
    checks.integer(pad_id, "pad_id")
    checks.number_in_range(text_weight, "text_weight", 0.0, 1.0, 1 / 8)
    device = model_device(model)
    text, image = text.to(device), image.to(device)  # a batch of the data: to the model
    text_logits, image_logits = model(text, image[:, :-1])
    text_loss = F.cross_entropy(text_logits.flatten(0, 1), text[:, 1:].flatten(),
                                ignore_index=pad_id)
    image_loss = F.cross_entropy(image_logits.flatten(0, 1), image.flatten())
    loss = text_weight * text_loss + (1 - text_weight) * image_loss
    return loss, {"text": text_loss.item(), "image": image_loss.item()}


# ---------------------------------------------------------------------------- sampling


def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep the k largest logits of each row, set the rest to -inf (probability 0).

    Rare tokens are each unlikely, but there are many of them: together they are
    picked often, and one bad token can spoil a picture. Top-k cuts that tail.
    """
    if checks.optional_integer(k, "top_k", minimum=1) is None or k >= logits.shape[-1]:
        return logits
    kth_largest = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, float("-inf"))


# Below this, logits / temperature overflows float32 to inf and softmax gives NaN; above
# the upper one every token is about equally likely: noise, whatever the prompt.
TEMPERATURE_RANGE = (1e-3, 100.0)


def check_temperature(temperature: float) -> float:
    """A temperature from 0.001 to 100 (NumPy's floats too).

    Why: 1e-45 passes "above zero" but divides the logits into inf, and the draw then
    fails inside torch.multinomial. For the most likely token every time, use top_k=1.
    """
    low, high = TEMPERATURE_RANGE
    try:
        return checks.number_in_range(temperature, "temperature", low, high, 0.7)
    except ValueError:
        raise ValueError(f"temperature must be a finite number from {low:g} to {high:g} (small "
                         f"= safer, 1 = as trained), such as 0.7; got {temperature}. For the "
                         f"most likely token every time, pass top_k=1.") from None


def pick_tokens(logits: torch.Tensor, temperature: float, top_k: int | None,
                generator: torch.Generator | None) -> torch.Tensor:
    """One token per row of ``logits`` [B, V]: temperature, then top-k, then a random draw."""
    check_temperature(temperature)
    probabilities = top_k_filter(logits / temperature, top_k).softmax(dim=-1)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(1)


@torch.no_grad()
def sample_image_tokens(model: TinyDalle, text: torch.Tensor, temperature: float = 1.0,
                        top_k: int | None = None,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Text ids [B, Lt] -> image tokens [B, image_length], drawn one at a time.

    First the whole text goes through the model once; its last position predicts the
    first image token. Each new token then goes in alone, attending to the keys and
    values the blocks cached for all earlier positions (the "KV cache").
    """
    hidden, caches = model.transform(model.embed_text(text))
    tokens = []
    for i in range(model.config.image_length):
        token = pick_tokens(model.image_head(hidden[:, -1]), temperature, top_k, generator)
        tokens.append(token)
        if i + 1 < model.config.image_length:
            hidden, caches = model.transform(model.embed_image(token[:, None], start=i), caches)
    return torch.stack(tokens, dim=1)


@torch.no_grad()
def tokenize_pairs(vqgan, tokenizer: WordTokenizer, images: torch.Tensor, captions: list[str],
                   batch_size: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Training pairs as token ids: captions -> text [N, 12], uint8 images -> image [N, 64].

    The VQGAN's 8x8 grid of code indices is read row by row, as DALL-E reads its 32x32 grid.
    """
    from mmlearn.vqgan import to_vqgan_range

    if len(images) != len(captions):
        raise ValueError(f"Give one caption per image ({len(images)} images, "
                         f"{len(captions)} captions).")
    device = vqgan.codebook.device
    grids = [vqgan.encode(to_vqgan_range(chunk.to(device).float() / 255))[1].flatten(1).cpu()
             for chunk in images.split(batch_size)]
    return tokenizer(captions), torch.cat(grids)


@torch.no_grad()
def decode_tokens(vqgan, tokens: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Image tokens [N, 64] (or [N, 8, 8]) -> uint8 images [N, 3, 32, 32] via the VQGAN."""
    from mmlearn.vqgan import to_unit_range

    checks.tensor(tokens, "tokens", ndim=(2, 3), dtype="integer",
                  example="of image tokens [N, 64] or [N, 8, 8]")
    side = math.isqrt(tokens[0].numel()) if len(tokens) else 0
    if not len(tokens) or side * side != tokens[0].numel():
        raise ValueError(f"tokens must be N >= 1 square grids of image tokens, [N, 64] or "
                         f"[N, 8, 8]; got {checks.describe_tensor(tokens)}.")
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    grids = tokens.reshape(len(tokens), side, side).to(vqgan.codebook.device)
    return torch.cat([float_to_uint8(to_unit_range(vqgan.decode_indices(grid)))
                      for grid in grids.split(batch_size)])


@torch.no_grad()
def sample(model: TinyDalle, vqgan, prompt: str, n: int = 8,
             temperature: float = 0.7, top_k: int | None = 32, seed: int = 0, *,
             max_bytes: int | None = None) -> Drawn:
    """Draw ``n`` images for one prompt, all in one batch. Same seed, same images.

    The defaults (temperature 0.7, top-k 32) trade a little variety for cleaner shapes:
    over the 36 colour x shape prompts the course model draws the asked shape more often
    than at temperature 1 (benchmarks/results/recorded.md).
    Bad prompts: empty, or without a single word the model knows, raises ValueError; too
    long is cut (with a warning); unknown words become <unk>, which the model never saw
    in training, so a warning names them (with the nearest known word, if one is close).
    A batch that would need more than 1 GiB is refused; ``max_bytes`` raises that limit.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"sample draws one prompt, a string such as 'a big blue triangle'; "
                        f"got {checks.describe(prompt)}. For several prompts use "
                        f"sample_many(model, vqgan, [prompt, ...]).")
    return sample_many(model, vqgan, [prompt], n, temperature, top_k, seed,
                       max_bytes=max_bytes)[0]


@torch.no_grad()
def sample_many(model: TinyDalle, vqgan, prompts: list[str], n: int = 8,
                  temperature: float = 0.7, top_k: int | None = 32,
                  seed: int = 0, *, max_bytes: int | None = None) -> list[Drawn]:
    """``n`` images for each of several prompts, sampled together in one batch.

    One batch of len(prompts) * n sequences is much faster than one call per prompt:
    the 64 sampling steps are paid once. (The random draws depend on the whole batch,
    so a prompt's images differ from those of ``sample`` with the same seed.)
    """
    if isinstance(prompts, str):
        raise ValueError("sample_many takes a list of prompts; for one, use sample().")
    _check_prompts(model.tokenizer, prompts)
    n, temperature, top_k, seed = _check_sampling(n, temperature, top_k, seed)
    checks.memory_budget(sampling_bytes(model, len(prompts) * n),
                         f"Sampling {len(prompts)} x {n} images at once", max_bytes)
    model.eval()
    device = model_device(model)
    text = model.tokenizer(list(prompts)).to(device).repeat_interleave(n, dim=0)
    generator = torch.Generator(device=device).manual_seed(seed)
    with one_cpu_thread():
        tokens = sample_image_tokens(model, text, temperature, top_k, generator)
        images = decode_tokens(vqgan, tokens)
    side = math.isqrt(model.config.image_length)
    grids = tokens.view(-1, side, side).cpu()
    return [Drawn(prompt, images[k * n:(k + 1) * n], tokens=grids[k * n:(k + 1) * n])
            for k, prompt in enumerate(prompts)]


def _check_prompts(tokenizer: WordTokenizer, prompts: list[str]) -> None:
    """Each prompt a string with at least one known word; unknown words named in a warning.

    Why: an unknown word becomes <unk>, a token the model never saw in training. A prompt
    of only <unk> draws a random picture; one <unk> among known words quietly loses what
    it meant ("a purple hexagon" draws some purple shape).
    """
    if not isinstance(prompts, list | tuple):
        raise TypeError(f"sample_many takes a list of prompts such as ['a red circle', "
                        f"'a blue star']; got {checks.describe(prompts)}.")
    known = tokenizer.vocabulary[2:]  # without <pad> and <unk>
    for prompt in prompts:
        words = tokenizer.words(prompt)
        if not words:
            raise ValueError(f"The prompt {prompt!r} has no words; write what to draw, "
                             f"e.g. 'a big blue triangle'.")
        unknown = [word for word in words if word not in tokenizer.ids]
        if len(unknown) == len(words):
            raise ValueError(f"The prompt {prompt!r} has no words the model knows "
                             f"({checks.describe_unknown(unknown, known)}). It knows: "
                             f"{', '.join(known)}.")
        if unknown:
            checks.warn(f"The model does not know {checks.describe_unknown(unknown, known)} in "
                        f"{prompt!r}: each becomes <unk>, a token never seen in training, so "
                        f"the picture cannot show it (and may come out odd).")


def _check_sampling(n: int, temperature: float, top_k: int | None, seed: int) -> tuple:
    """Sampling settings checked and returned as plain Python numbers (torch's generator
    refuses NumPy's): ``n`` a whole number >= 1, ``temperature`` within TEMPERATURE_RANGE,
    ``top_k`` None or a whole number >= 1, ``seed`` a seed (``checks.seed``)."""
    return (checks.integer(n, "n (images per prompt)", minimum=1), check_temperature(temperature),
            checks.optional_integer(top_k, "top_k", minimum=1), checks.seed(seed))


def sampling_bytes(model: TinyDalle, sequences: int) -> int:
    """About how many bytes drawing ``sequences`` pictures at once takes: each sequence
    keeps every block's keys and values (the cache, float32) and its decoded picture.

    Why: ``n=10**7`` would ask for terabytes and take the kernel down mid-way; this is
    known before the first token is drawn.
    """
    config = model.config
    cache = config.layers * 2 * config.sequence_length * config.width * 4
    picture = 3 * 32 * 32 + config.image_length * 8  # uint8 pixels and int64 tokens
    return sequences * (cache + picture)


@torch.no_grad()
def clip_scores(clip, prompt: str, images: torch.Tensor) -> torch.Tensor:
    """Cosine similarity between the prompt and each uint8 image [N, 3, H, W], by CLIP."""
    from mmlearn.clip import to_model_input

    image_vectors = clip.encode_images(to_model_input(images, clip.model))
    return image_vectors @ clip.encode_texts([prompt])[0]


def rerank(clip, generation: Drawn, keep: int | None = None) -> Drawn:
    """Best-of-N: sort the images by CLIP's similarity to the prompt and keep the best.

    The transformer proposes, CLIP judges. DALL-E 1 drew 512 samples per caption and
    showed the top 32 by CLIP score.
    """
    checks.optional_integer(keep, "keep", minimum=1)
    scores = clip_scores(clip, generation.prompt, generation.images)
    order = scores.argsort(descending=True)[:keep]
    return Drawn(generation.prompt, generation.images[order], tokens=generation.tokens[order],
                 scores=scores[order])


# ---------------------------------------------------------------------------- loading


def checkpoint_dict(model: TinyDalle) -> dict:
    """What a tiny DALL-E file holds: sizes, vocabulary and fp16 weights (for
    ``checkpoints.save_checkpoint``: the weights as tensors, the rest as JSON)."""
    from mmlearn.checkpoints import half_precision

    return {"config": asdict(model.config), "words": model.tokenizer.vocabulary[2:],
            "state_dict": half_precision(model.state_dict())}


def dalle_from_checkpoint(checkpoint: dict, device: str | None = None) -> TinyDalle:
    """Rebuild a model from ``checkpoint_dict``'s output (weights back to fp32)."""
    model = TinyDalle(DalleConfig(**checkpoint["config"]), checkpoint["words"])
    model.load_state_dict({k: v.float() for k, v in checkpoint["state_dict"].items()})
    return model.to(pick_device(device)).eval()


def load_course_dalle(device: str | None = None) -> TinyDalle:
    """The course's tiny DALL-E trained on ShapeWorld (scripts/train_dalle.py), sha256-checked."""
    checkpoint = load_checkpoint(shipped_path(COURSE_WEIGHTS))
    return dalle_from_checkpoint(checkpoint, device)


def new_dalle(seed: int = 0, **sizes) -> TinyDalle:
    """An untrained tiny DALL-E with ShapeWorld's vocabulary; ``sizes`` override DalleConfig."""
    seed = checks.seed(seed)
    checks.known_names(sizes, [f.name for f in fields(DalleConfig)], "size")
    for name, value in sizes.items():
        sizes[name] = checks.integer(value, name, minimum=1)
    config = DalleConfig(**sizes)
    if config.width % config.heads:
        raise ValueError(f"width must be a multiple of heads (each head gets width / heads "
                         f"numbers); got width={config.width}, heads={config.heads}.")
    weights = 4 * (12 * config.layers * config.width ** 2
                   + config.width * (2 * config.image_vocab + config.sequence_length + 200))
    checks.memory_budget(weights, f"A tiny DALL-E of width {config.width} and {config.layers} "
                                  f"layers")
    torch.manual_seed(seed)
    words = shapeworld_words()
    return TinyDalle(DalleConfig(**sizes), words)
