"""Image search with CLIP: embed a collection once, then find images by text or by image.

CLIP maps images and texts into one space where a matching pair points the same
way. Search is then three steps:

1. embed every image once and keep the unit vectors (the *index*);
2. embed the query - a text such as "a big blue star", or an image;
3. score every image by cosine similarity (a dot product of unit vectors: one
   matrix multiply for any number of queries) and keep the k best (``torch.topk``).

Step 3 is *brute force*: it looks at every vector, so its cost grows with the
collection. That is exact and fast up to about a million vectors on one machine
(see ``benchmarks/``); beyond that, libraries such as faiss trade a little
accuracy for speed with approximate indexes.

``ImageIndex`` does this for a folder of files, a list of images or paths, or a
dataset such as ShapeWorld. It embeds in batches (a folder of any size needs
the memory of one batch plus the vectors), skips unreadable files with a warning,
stores vectors in float16 (half the bytes of float32; cosine similarities
change by less than 2e-4) and saves to one ``.npz`` file that records which
encoder built it: its name and a sha256 of its weights.

The encoder is anything with ``.name``, ``.encode_images(list of PIL images)``
and ``.encode_texts(list of str)`` returning one row per input, e.g. the
``LoadedClip`` from ``mmlearn.clip.load_clip``.
"""

import hashlib
import json
import numbers
import os
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from mmlearn import brute_force, checks
from mmlearn.files import atomic_file
from mmlearn.images import BadImageError, iter_images, list_image_files, open_image, to_rgb

FILE_FORMAT = "mmlearn-image-index"
FILE_VERSION = 2  # 2: the checksum covers the header too
QUERIES_PER_BLOCK = 1024


class Encoder(Protocol):
    """What an index needs from a model (``mmlearn.clip.LoadedClip`` is one)."""

    name: str

    def encode_images(self, images: list[Image.Image]) -> torch.Tensor: ...

    def encode_texts(self, texts: list[str]) -> torch.Tensor: ...


class IndexFileError(ValueError):
    """A saved index that cannot be trusted: truncated, corrupt or not an index at all."""


@dataclass
class Hit:
    """One search result: which item, how similar (cosine, -1..1), and what it is."""

    id: int
    score: float
    path: str | None = None
    caption: str | None = None

    def __str__(self) -> str:
        return f"{self.score:.3f}  #{self.id}  {self.caption or self.path or ''}"


class ImageIndex:
    """Unit vectors of a collection of images, their metadata, and search over them.

    ``index.vectors`` is a float16 tensor [N, D]; ``index.items[i]`` is the
    metadata of row i: ``{"id": i, "path": ..., "caption": ...}``. Ids are row
    numbers: they never change when more images are added or the index is saved.
    """

    def __init__(self, encoder: Encoder | None = None, encoder_name: str | None = None):
        if encoder is None and encoder_name is None:
            raise ValueError("Pass the encoder that embeds the images (e.g. load_clip('course')).")
        self.encoder = encoder
        self.encoder_name = encoder.name if encoder is not None else encoder_name
        self.vectors = torch.empty(0, 0, dtype=torch.float16)
        self.items: list[dict] = []
        self.skipped: dict[str, str] = {}  # unreadable files met while adding: {path: reason}
        self._search_matrix: torch.Tensor | None = None
        self._in_memory_sources: list[tuple[int, Sequence]] = []  # (first id, images/dataset)
        self._encoder_weights: str | None = None  # the fingerprint read from a saved file

    @classmethod
    def build(cls, encoder: Encoder, source, batch_size: int = 64,
              progress: bool = True) -> "ImageIndex":
        """A new index of ``source``: a folder, a list of paths or PIL images, or a dataset."""
        index = cls(encoder)
        index.add(source, batch_size=batch_size, progress=progress)
        if not len(index):  # an empty index would answer every search with an error later
            raise ValueError(f"Found no readable images in {_short(source)} "
                             f"({len(index.skipped)} files skipped as unreadable); pass a folder "
                             f"of image files, a list of paths or PIL images, or a dataset.")
        return index

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return (f"ImageIndex({len(self)} images, dim {self.dim}, encoder {self.encoder_name!r}, "
                f"{len(self.skipped)} files skipped)")

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    # ----------------------------------------------------------------- adding images

    def add(self, source, batch_size: int = 64, progress: bool = True) -> int:
        """Embed and add ``source``; return how many images were added.

        ``source`` is a folder, one image file, a list of paths, a list of PIL
        images, or a dataset (``len`` + ``[i]`` giving an image, ``(image,
        caption, ...)`` or ``{"image": ..., "caption": ...}``, like ShapeWorld).
        """
        if isinstance(source, np.ndarray | torch.Tensor):
            raise TypeError(f"Cannot index a {type(source).__name__} of shape "
                            f"{tuple(source.shape)}: pass a folder, a list of PIL images or "
                            f"paths, or a dataset. (Embeddings you computed go in with "
                            f"index.add_vectors(vectors).)")
        if isinstance(source, str | Path):
            _check_exists(source)
            paths = list_image_files(source) if Path(source).is_dir() else [source]
            return self.add_paths(paths, batch_size, progress)
        if isinstance(source, list | tuple):
            checks.one_kind_of_source(source)
        if isinstance(source, list | tuple) and source and isinstance(source[0], Image.Image):
            return self.add_images(source, batch_size=batch_size, progress=progress)
        if isinstance(source, list | tuple) and all(isinstance(s, str | Path) for s in source):
            return self.add_paths(source, batch_size, progress)
        if hasattr(source, "__len__") and hasattr(source, "__getitem__"):
            return self.add_dataset(source, batch_size, progress)
        raise ValueError(f"Cannot index a {type(source).__name__}: pass a folder, a list of "
                         f"paths or PIL images, or a dataset of (image, caption) items.")

    def add_paths(self, paths: Sequence[str | Path], batch_size: int = 64,
                  progress: bool = True) -> int:
        """Add image files, opened one batch at a time; unreadable ones are skipped and counted."""
        stream = ((image, {"path": path, "caption": None})
                  for path, image in iter_images(paths, self.skipped))
        return self._add_stream(stream, len(paths), batch_size, progress)

    def add_images(self, images: Sequence[Image.Image], captions: Sequence[str] | None = None,
                   batch_size: int = 64, progress: bool = True) -> int:
        """Add PIL images (with optional captions). The index remembers them to show results."""
        if captions is not None and len(captions) != len(images):
            raise ValueError(f"Got {len(images)} images but {len(captions)} captions; "
                             f"pass one caption per image or none.")
        first_id = len(self)
        stream = ((to_rgb(image), {"path": None, "caption": captions[i] if captions else None})
                  for i, image in enumerate(images))
        added = self._add_stream(stream, len(images), batch_size, progress)
        self._in_memory_sources.append((first_id, images))
        return added

    def add_dataset(self, dataset: Sequence, batch_size: int = 64, progress: bool = True) -> int:
        """Add every item of a dataset such as ShapeWorld, reading one batch at a time."""
        def stream():
            for i in range(len(dataset)):
                image, caption = image_and_caption(dataset[i])
                yield to_rgb(image), {"path": None, "caption": caption}

        first_id = len(self)
        added = self._add_stream(stream(), len(dataset), batch_size, progress)
        self._in_memory_sources.append((first_id, dataset))
        return added

    def add_vectors(self, vectors: torch.Tensor, items: Sequence[dict] | None = None) -> int:
        """Add ready-made embeddings (normalised here), e.g. computed elsewhere or for tests."""
        vectors = torch.nn.functional.normalize(torch.as_tensor(vectors).float(), dim=1)
        items = items or [{} for _ in range(len(vectors))]
        if len(items) != len(vectors):
            raise ValueError(f"Got {len(vectors)} vectors but {len(items)} metadata items.")
        self._append(vectors.half(), [{"path": None, "caption": None, **m} for m in items])
        return len(vectors)

    def _add_stream(self, stream: Iterator[tuple[Image.Image, dict]], total: int,
                    batch_size: int, progress: bool) -> int:
        """Embed up to ``total`` (image, metadata) pairs batch by batch; return how many.

        Only one batch of images is alive at a time. The vectors go straight into one
        buffer made for ``total`` rows, not into a list of small per-batch tensors: small
        long-lived allocations between each batch's large short-lived ones fragment the
        C heap, and memory then grows with the collection (330 MB for 20,000 images).
        """
        checks.integer(batch_size, "batch_size", minimum=1)
        vectors, items = None, []
        with tqdm(total=total, unit="img", desc="Embedding", disable=not progress) as bar:
            for batch in batches(stream, batch_size):
                embedded = self._embed_images([image for image, _ in batch])
                if vectors is None:  # the first batch tells the dimension
                    vectors = torch.empty(total, embedded.shape[1], dtype=torch.float16)
                vectors[len(items):len(items) + len(batch)] = embedded
                items += [meta for _, meta in batch]
                bar.update(len(batch))
        if items:  # added only when the whole source is embedded: an interrupt changes nothing
            self._append(vectors[:len(items)], items)
        return len(items)

    def _embed_images(self, images: list[Image.Image]) -> torch.Tensor:
        """Unit vectors of a batch of images, as float16 on the CPU."""
        with torch.no_grad():
            vectors = self._require_encoder().encode_images(images)
        return torch.nn.functional.normalize(vectors.float().cpu(), dim=1).half()

    def _append(self, vectors: torch.Tensor, items: list[dict]) -> None:
        if len(self) and vectors.shape[1] != self.dim:
            raise ValueError(f"New vectors have {vectors.shape[1]} dimensions but the index has "
                             f"{self.dim}: they come from a different model.")
        first_id = len(self)
        self.vectors = vectors if not len(self) else torch.cat([self.vectors, vectors])
        for i, meta in enumerate(items):  # in place: a copy would double the metadata's memory
            meta["id"] = first_id + i
            meta["path"] = None if meta.get("path") is None else str(meta["path"])
        self.items += items
        self._search_matrix = None  # rebuilt at the next search

    def _require_encoder(self) -> Encoder:
        if self.encoder is None:
            raise ValueError(f"This index has no encoder; pass the one that built it "
                             f"({self.encoder_name!r}) as ImageIndex.load(path, encoder=...).")
        return self.encoder

    # ----------------------------------------------------------------- searching

    def embed_queries(self, queries, batch_size: int = 256) -> torch.Tensor:
        """Unit vectors [Q, D] for texts, PIL images or vectors (one or a list of them)."""
        if isinstance(queries, torch.Tensor | np.ndarray):
            if queries.ndim not in (1, 2) or queries.dtype in (np.complex64, np.complex128,
                                                               torch.complex64, torch.bool):
                raise ValueError(f"A query vector must be one real vector [D] or a batch "
                                 f"[Q, D]; got a {queries.dtype} of shape "
                                 f"{tuple(queries.shape)}. To search with a picture, pass a "
                                 f"PIL image (PIL.Image.fromarray(pixels)).")
            vectors = torch.as_tensor(queries).float()
            vectors = vectors.unsqueeze(0) if vectors.ndim == 1 else vectors
            return torch.nn.functional.normalize(vectors, dim=1)
        queries = _checked_queries(queries)
        if all(isinstance(q, str) for q in queries):
            encoder = self._require_encoder()
            checks.warn_if_cut(queries, getattr(encoder, "tokenizer", None),
                               getattr(encoder, "context_length", 77), "query")
            encode = encoder.encode_texts
        elif all(isinstance(q, Image.Image) for q in queries):
            encode, queries = self._require_encoder().encode_images, [to_rgb(q) for q in queries]
        else:
            raise ValueError("Queries must be all texts, all PIL images, or a tensor of vectors.")
        with torch.no_grad():
            vectors = torch.cat([encode(queries[i:i + batch_size]).float().cpu()
                                 for i in range(0, len(queries), batch_size)])
        return torch.nn.functional.normalize(vectors, dim=1)

    def search_matrix(self) -> torch.Tensor:
        """A float32 copy of the vectors, for searching many queries at once; made once.

        A batch of queries is limited by arithmetic, and most CPUs have no fast float16
        arithmetic: PyTorch's float16 matrix multiply on them is several times slower
        than float32 (see benchmarks/README.md). So batches multiply this copy: 3x the
        memory of the float16 vectors alone while it exists. A single query never needs
        it (see mmlearn.brute_force). The copy is rebuilt after ``add``.
        """
        if self._search_matrix is None:
            self._search_matrix = self.vectors.float()
        return self._search_matrix

    def topk(self, query_vectors: torch.Tensor, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
        """Brute-force top-k: ``(scores [Q, k], ids [Q, k])``, best first, for unit query vectors.

        Exact: the same ids as scoring every vector in float32. One query reads the
        float16 vectors directly; several multiply the float32 copy (``search_matrix``),
        ``QUERIES_PER_BLOCK`` at a time. mmlearn.brute_force says why each is faster.
        """
        if len(self) == 0:
            raise ValueError("The index is empty: add images before searching.")
        k = checks.integer(k, "k", minimum=1)
        queries = torch.as_tensor(query_vectors).float().contiguous()
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"Query vectors must have shape [Q, {self.dim}], got "
                             f"{tuple(queries.shape)}: were they made by the same model?")
        checks.finite_vectors(queries, "The query vector")
        k = min(k, len(self))
        if len(queries) == 1 and brute_force.float16_adds_in_float32(self.dim):
            return brute_force.top_k_one_query(queries[0], self.vectors, k)
        results = [brute_force.top_k_many(queries[i:i + QUERIES_PER_BLOCK], self.search_matrix(), k)
                   for i in range(0, len(queries), QUERIES_PER_BLOCK)]
        return torch.cat([scores for scores, _ in results]), torch.cat([ids for _, ids in results])

    def search(self, queries, k: int = 5) -> list[Hit] | list[list[Hit]]:
        """Top-k hits for a query (text, PIL image or vector), or a list of hits per query."""
        single = isinstance(queries, str | Image.Image) or (
            isinstance(queries, torch.Tensor | np.ndarray) and queries.ndim == 1)
        scores, ids = self.topk(self.embed_queries(queries), k)
        hits = [[self.hit(int(i), float(s)) for s, i in zip(row_scores, row_ids, strict=True)]
                for row_scores, row_ids in zip(scores, ids, strict=True)]
        return hits[0] if single else hits

    def _check_id(self, id) -> int:
        """An item's id: a whole number from 0 to len(index) - 1. Why: Python's negative
        indices would quietly give an item from the end, which has no such id."""
        id = checks.integer(id, "id")
        if not 0 <= id < len(self.items):
            raise ValueError(f"id must be an item of the index, from 0 to {len(self.items) - 1}"
                             f" ({len(self.items)} items); got {id}.")
        return id

    def hit(self, id: int, score: float) -> Hit:
        id = self._check_id(id)
        if isinstance(score, bool) or not isinstance(score, numbers.Real):
            raise TypeError(f"score must be a number (a cosine similarity); got "
                            f"{checks.describe(score)}.")
        item = self.items[id]
        return Hit(id=id, score=score, path=item.get("path"), caption=item.get("caption"))

    def image(self, id: int) -> Image.Image | None:
        """The picture of item ``id``: opened from its path, or from the images/dataset it was
        added from in this session. None when neither is available (e.g. an index of
        in-memory images after loading it from disk)."""
        id = self._check_id(id)
        path = self.items[id].get("path")
        if path is not None:
            try:
                return open_image(path)
            except (BadImageError, FileNotFoundError):  # moved or changed since it was indexed
                return None
        for first_id, source in reversed(self._in_memory_sources):
            if first_id <= id < first_id + len(source):
                return to_rgb(image_and_caption(source[id - first_id])[0])
        return None

    # ----------------------------------------------------------------- saving and loading

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Save to one ``.npz`` file, atomically: a crash midway leaves any old file intact.

        The file holds the float16 vectors, the metadata as JSON, and a header with the
        encoder's name and a fingerprint of its weights (``weights_fingerprint``); a sha256
        of all three is checked by ``load``. An existing file is
        replaced only if it is a saved index (known by its header, not its name), or with
        ``overwrite=True``: a photo or a weights file given by mistake is never lost.
        """
        path = _check_save_path(path, len(self), overwrite)
        vectors = self.vectors.numpy()
        metadata = json.dumps({"items": self.items, "skipped": self.skipped}).encode()
        weights = (weights_fingerprint(self.encoder) if self.encoder is not None
                   else self._encoder_weights)  # loaded without its encoder: keep the record
        header = {"format": FILE_FORMAT, "version": FILE_VERSION, "encoder": self.encoder_name,
                  "encoder_weights": weights, "count": len(self), "dim": self.dim}
        header["sha256"] = _sha256(vectors, metadata, header)
        with atomic_file(path) as f:
            np.savez(f, vectors=vectors, metadata=np.frombuffer(metadata, dtype=np.uint8),
                     header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
        return path

    @classmethod
    def load(cls, path: str | Path, encoder: Encoder | None = None) -> "ImageIndex":
        """Load a saved index, checking it is complete and was built by ``encoder``.

        "Built by": the same name and, where the file records one, the same fingerprint of
        the weights, so a retrained model that kept its name is refused too. Without an
        encoder you can still search by vector; texts and images need it.
        """
        header, vectors, metadata = _read_index_file(Path(path))
        if encoder is not None and encoder.name != header["encoder"]:
            raise ValueError(
                f"{path} was built with the encoder {header['encoder']!r}, not {encoder.name!r}: "
                f"their vectors are not comparable. Load it with the same model, or build a "
                f"new index with this one.")
        recorded = header.get("encoder_weights")  # absent in files saved before it was kept
        if encoder is not None and recorded is not None:
            actual = weights_fingerprint(encoder)
            if actual is not None and actual != recorded:
                raise ValueError(
                    f"{path} was built with a model named {encoder.name!r} whose weights differ "
                    f"from this one's (weights fingerprint {recorded[:12]}…, this model "
                    f"{actual[:12]}…): retrained or fine-tuned since? Their vectors are not "
                    f"comparable. Load it with the model that built it, or build a new index.")
        index = cls(encoder, encoder_name=header["encoder"])
        index._encoder_weights = recorded
        index.vectors = torch.from_numpy(vectors)
        index.items, index.skipped = metadata["items"], metadata["skipped"]
        return index


def _checked_queries(queries) -> list:
    """Queries as a list: texts (with words in them, not a file name) or PIL images.

    A lone text or image becomes a list of one. Why the checks: a blank text or a file
    name is still a text to CLIP, and would return hits that look like answers.
    """
    single = isinstance(queries, str | Image.Image)
    if queries is None or isinstance(queries, bytes | Mapping) or not (
            single or isinstance(queries, Iterable)):
        raise TypeError(f"Search with a text, a PIL image, a vector, or a list of them; got "
                        f"{checks.describe(queries)}.")
    queries = [queries] if single else list(queries)
    if not queries:
        raise ValueError("No queries given: pass a text, an image, or a list of them.")
    for i, query in enumerate(queries):
        if isinstance(query, str):
            name = "The query" if single else f"queries[{i}]"
            checks.text(query, name, "a red circle")
            checks.not_a_path(query, name)
    return queries


def _check_exists(source: str | Path) -> None:
    """A folder or file to index must exist: a typo would otherwise give an empty index."""
    if not Path(source).expanduser().exists():
        raise ValueError(f"There is no file or folder at {str(source)!r} (relative paths start "
                         f"from {os.getcwd()}); check the spelling.")


def _check_save_path(path: str | Path, count: int, overwrite: bool) -> Path:
    """Where to save: a file name, not a folder; not someone's other file; something to save."""
    if count == 0:
        raise ValueError("The index is empty: add images before saving it.")
    checks.flag(overwrite, "overwrite")
    if isinstance(path, str) and path.endswith(("/", os.sep)) or Path(path).is_dir():
        raise ValueError(f"{str(path)!r} is a folder; give a file name to save to, such as "
                         f"{os.path.join(path, 'index.npz')!r}.")
    path = Path(path)
    if path.exists() and not overwrite and not _is_index_file(path):
        raise ValueError(f"{str(path)!r} exists and is not a saved index: saving would replace "
                         f"it. Choose another name, or pass overwrite=True to replace it.")
    return path


def _is_index_file(path: Path) -> bool:
    """True if ``path`` holds a saved mmlearn index (of any version), read from its header."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return json.loads(archive["header"].tobytes()).get("format") == FILE_FORMAT
    except Exception:  # anything that is not such a file, however it fails to read
        return False


def _short(source) -> str:
    """A source named in a message: a path as it is, anything else by its type."""
    return repr(str(source)) if isinstance(source, str | Path) else f"the {type(source).__name__}"


def batches(stream: Iterable, batch_size: int) -> Iterator[list]:
    """Group a stream into lists of ``batch_size`` (the last one may be shorter)."""
    batch = []
    for element in stream:
        batch.append(element)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def image_and_caption(item) -> tuple[Image.Image, str | None]:
    """The image and caption in one dataset item: an image, a tuple, or a dict."""
    if isinstance(item, Image.Image):
        return item, None
    if isinstance(item, tuple | list) and item and isinstance(item[0], Image.Image):
        caption = item[1] if len(item) > 1 and isinstance(item[1], str) else None
        return item[0], caption
    if isinstance(item, dict) and isinstance(item.get("image"), Image.Image):
        return item["image"], item.get("caption")
    raise ValueError(f"A dataset item must be a PIL image, an (image, caption, ...) tuple or a "
                     f"dict with 'image' and 'caption'; got a {type(item).__name__}. (Datasets "
                     f"that return tensors: create them without a transform.)")


def weights_fingerprint(encoder) -> str | None:
    """A sha256 of the encoder's weights: every tensor of ``encoder.model``'s state dict,
    with its name, dtype and shape. None for an encoder without a torch ``model``.

    The same weights give the same fingerprint on any device; a retrained or fine-tuned
    model gives another, even under the same name.
    """
    model = getattr(encoder, "model", None)
    if not isinstance(model, torch.nn.Module):
        return None
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())  # its bytes, no copy
    return digest.hexdigest()


def _sha256(vectors: np.ndarray, metadata: bytes, header: dict) -> str:
    """A checksum of everything ``load`` reads back: vectors, metadata and the header
    (without its own sha256), so that a relabelled encoder or dimension is caught too."""
    digest = hashlib.sha256()
    digest.update(memoryview(np.ascontiguousarray(vectors)).cast("B"))
    digest.update(metadata)
    fields = {key: value for key, value in header.items() if key != "sha256"}
    digest.update(json.dumps(fields, sort_keys=True).encode())
    return digest.hexdigest()


def _read_index_file(path: Path) -> tuple[dict, np.ndarray, dict]:
    """Header, vectors and metadata of a saved index, or ``IndexFileError`` if not intact."""
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder; give the index file saved in it, such as "
                         f"{str(path / 'index.npz')!r}.")
    if not path.is_file():
        raise FileNotFoundError(f"No saved index at {path}.")
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"  # what np.savez writes; numpy's own error for
    if not is_zip:                            # other files advises allow_pickle, never wanted
        raise IndexFileError(f"{path} is not an mmlearn index (another kind of file). Give "
                             f"the file that ImageIndex.save wrote.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(archive["header"].tobytes())
            vectors = archive["vectors"]
            metadata_bytes = archive["metadata"].tobytes()
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError) as error:
        raise IndexFileError(f"{path} is not a complete mmlearn index (truncated, corrupt, or "
                             f"another kind of file): {error}. Rebuild and save it.") from error
    if header.get("format") != FILE_FORMAT:
        raise IndexFileError(f"{path} is not an mmlearn image index.")
    if header.get("version") != FILE_VERSION:
        raise IndexFileError(f"{path} was saved by another version of mmlearn (index format "
                             f"{header.get('version')}, this one reads {FILE_VERSION}): build "
                             f"the index again and save it.")
    if (_sha256(vectors, metadata_bytes, header) != header.get("sha256")
            or len(vectors) != header["count"]):
        raise IndexFileError(f"{path} does not match the checksum recorded when it was saved: "
                             f"the file is corrupt. Rebuild and save it again.")
    return header, vectors, json.loads(metadata_bytes)


def recall_at_k(index: ImageIndex, queries: Sequence[str],
                relevant: Sequence[int | Iterable[int]], ks: Sequence[int] = (1, 5, 10)
                ) -> dict[int, float]:
    """Recall@k: the fraction of queries with at least one relevant id among the top k.

    ``relevant[q]`` is the id (or ids) that count as a correct answer to query q,
    e.g. every image whose caption is the query (see ``ids_with_caption``).
    """
    queries = checks.texts(queries, "queries", "a red circle")
    ks = [checks.integer(k, "each of ks", minimum=1) for k in ks]
    if len(queries) != len(relevant) or not queries:
        raise ValueError(f"Need one set of relevant ids per query, got {len(queries)} queries "
                         f"and {len(relevant)} sets.")
    relevant = [{int(r)} if isinstance(r, int | np.integer) else set(r) for r in relevant]
    _, ids = index.topk(index.embed_queries(list(queries)), max(ks))
    return {k: sum(bool(set(row[:k].tolist()) & rel) for row, rel in zip(ids, relevant,
                                                                          strict=True))
            / len(queries) for k in ks}


def ids_with_caption(index: ImageIndex, captions: Sequence[str]) -> list[set[int]]:
    """For each caption, the ids of the items whose caption is exactly that text."""
    captions = checks.texts(captions, "captions", "a red circle")
    by_caption: dict[str, set[int]] = {}
    for item in index.items:
        by_caption.setdefault(item.get("caption"), set()).add(item["id"])
    return [by_caption.get(caption, set()) for caption in captions]
