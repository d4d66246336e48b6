"""`edge-t2i adapt`: teach a trained generator to read what people type, without touching the GAN.

The generator reads its training phrasings far better than other sentences: the embedding of an unseen
sentence pattern or synonym lands where the generator was never trained. An attribute bottleneck
(networks.TextAdapter) in front of the generator is trained alone: linear classifiers read shape,
color, size, position and background from the standardised sentence embedding, and a table of the
embeddings of the canonical training captions ("a {size} {color} {shape} in the {pos}" [+ " on a {bg}
background"], every attribute tuple) turns the predicted attributes back into an embedding the
generator knows (the canonical captions read 90.7% all-correct, the mixed training phrasings 89.0%).
The classifiers train on many phrasings (data/phrasings.py AUGMENT, with words around the sentence,
plus the dataset's training captions and the canonical ones), with Gaussian noise on the embeddings.
The GAN's weights are unchanged; the held-out phrasing set, the dataset's novel phrasings and the
held-out (shape, color) pairs never enter this training.

The same attributes are also read by a phrase reader (networks.PhraseReader, runtime/reader.py), which
a pack runs on the prompts it encodes: the sentence embedding dilutes the few words that say where, and
the linear classifiers above read the position of held-out phrasings right 64% of the time, the reader,
attending to the embeddings of the sentence's word windows, 100% (`fit_reader`; both measured on
`edge-t2i quality`'s 500 held-out phrasings, text only: benchmarks/read_rate.py). It trains on READER_SENTENCES of the same
sentences. Cost: encoding ~26k sentences and ~40k word windows with the text encoder (~4-5 min on 2
cores), then about a minute of training.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
from pathlib import Path

import numpy as np

from edge_t2i import _io
from edge_t2i.data import phrasings
from edge_t2i.data.captions import make_caption, parse_caption
from edge_t2i.data.vocab import BACKGROUNDS, COLORS, HELDOUT_PAIRS, POSITIONS, SHAPES, SIZES
from edge_t2i.errors import CheckpointError, InputError, require

log = logging.getLogger(__name__)
CANONICAL = "a {size} {color} {shape} in the {pos}"
CANONICAL_BG = " on a {bg} background"
GROUPS = (SHAPES, COLORS, SIZES, POSITIONS, (*BACKGROUNDS, "none"))  # shape, color, size, position, background
NOISE = 0.3  # std of the Gaussian noise on standardised embeddings while the classifiers train


def canonical(shape: str, color: str, size: str, position: str, background: str | None) -> str:
    """The training caption that stands for these attributes."""
    text = CANONICAL.format(size=size, color=color, shape=shape, pos=position)
    return text + (CANONICAL_BG.format(bg=background) if background else "")


def attribute_tuples() -> list[tuple[str, str, str, str, str]]:
    """Every (shape, color, size, position, background or "none") outside the held-out (shape, color) pairs."""
    held = {tuple(p) for p in HELDOUT_PAIRS}
    return [t for t in itertools.product(*GROUPS) if (t[0], t[1]) not in held]


def labelled_sentences(seed: int = 0, augment_per_tuple: int = 5, dataset_per_tuple: int = 3) -> tuple[list[str], np.ndarray]:
    """Sentences and their attribute labels int64 [N, 5] (indices into GROUPS): per attribute tuple, the
    canonical caption, `augment_per_tuple` AUGMENT phrasings and `dataset_per_tuple` dataset training
    captions (whose background label is what the caption names, read by the dataset's parser)."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for shape, color, size, pos, bg_name in attribute_tuples():
        bg = None if bg_name == "none" else bg_name
        cases = [(canonical(shape, color, size, pos, bg), bg_name)]
        cases += [(phrasings.phrase(rng, shape, color, size, pos, bg, heldout=False), bg_name)
                  for _ in range(augment_per_tuple)]
        for _ in range(dataset_per_tuple):
            caption = make_caption(rng, shape, color, size, pos, bg or str(rng.choice(BACKGROUNDS)))
            cases.append((caption, parse_caption(caption).background or "none"))
        for text, background in cases:
            texts.append(text)
            labels.append([g.index(v) for g, v in zip(GROUPS, (shape, color, size, pos, background))])
    return texts, np.asarray(labels, dtype=np.int64)


def canonical_table(standardised) -> tuple[list[tuple[str, ...]], object]:  # noqa: ANN001
    """Every attribute tuple (in TextAdapter's order: itertools.product of GROUPS) and the standardised
    embeddings [N, dim] of their canonical captions, from `standardised(texts)`."""
    tuples = list(itertools.product(*GROUPS))
    return tuples, standardised([canonical(*t[:4], None if t[4] == "none" else t[4]) for t in tuples])


def fit_classifiers(adapter, x, labels: np.ndarray, steps: int = 1500, seed: int = 0) -> dict:  # noqa: ANN001
    """Train `adapter.heads` (cross-entropy per group) on standardised embeddings x [N, dim] with NOISE.
    Returns each group's accuracy on a held-back 10% of the sentences (not trained on)."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(seed)
    y = torch.from_numpy(labels)
    order = torch.randperm(len(x), generator=gen)
    n_val = max(1, len(x) // 10)
    val, train = order[:n_val], order[n_val:]
    offsets = np.cumsum([0, *(len(g) for g in GROUPS)])
    opt = torch.optim.Adam(adapter.heads.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(steps):
        idx = train[torch.randint(len(train), (512,), generator=gen)]
        logits = adapter.heads(x[idx] + NOISE * torch.randn(len(idx), x.shape[1], generator=gen))
        loss = sum(F.cross_entropy(logits[:, offsets[k]:offsets[k + 1]], y[idx, k]) for k in range(len(GROUPS)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        logits = adapter.heads(x[val])
    names = ("shape", "color", "size", "position", "background")
    return {n: round(float((logits[:, offsets[k]:offsets[k + 1]].argmax(1) == y[val, k]).float().mean()), 4)
            for k, n in enumerate(names)}


READER_WORDS = 4          # words per window of the phrase reader ("in the top left": 4)
READER_SENTENCES = 6000   # training sentences whose windows the phrase reader learns from
READER_STEPS = 600


def fit_reader(reader, texts: list[str], labels: np.ndarray, encode, max_words: int = READER_WORDS,  # noqa: ANN001
               steps: int = READER_STEPS, seed: int = 0) -> dict:
    """Train a networks.PhraseReader on `texts` with attribute `labels` int64 [N, len(GROUPS)]: each text's
    windows (data.prompts.window_bags) encoded by `encode(list[str]) -> float32 [n, dim]` (unique
    windows once), cross-entropy per group, batches of 128 texts. Returns each group's accuracy on a
    held-back 10% of the texts (not trained on)."""
    import torch
    import torch.nn.functional as F

    from edge_t2i.data.prompts import window_bags

    unique, indices = window_bags(texts, max_words)
    log.info("encoding %d word windows of %d sentences", len(unique), len(texts))
    vectors = torch.from_numpy(np.asarray(encode(unique), np.float32))
    bags = [vectors[i] for i in indices]
    gen = torch.Generator().manual_seed(seed)
    y = torch.from_numpy(labels)
    order = torch.randperm(len(texts), generator=gen)
    n_val = max(1, len(texts) // 10)
    val, train = order[:n_val].tolist(), order[n_val:]
    offsets = np.cumsum([0, *reader.groups])

    def loss_of(rows: list[int]) -> torch.Tensor:
        logits = torch.stack([reader(bags[i]) for i in rows])
        return sum(F.cross_entropy(logits[:, offsets[k]:offsets[k + 1]], y[rows, k]) for k in range(len(reader.groups)))

    opt = torch.optim.Adam(reader.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(steps):
        rows = train[torch.randint(len(train), (128,), generator=gen)].tolist()
        loss = loss_of(rows)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        logits = torch.stack([reader(bags[i]) for i in val])
    names = ("shape", "color", "size", "position", "background")
    return {n: round(float((logits[:, offsets[k]:offsets[k + 1]].argmax(1) == y[val, k]).float().mean()), 4)
            for k, n in enumerate(names)}


def adapt_checkpoint(checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], steps: int = 1500,
                     augment_per_tuple: int = 5, seed: int = 0, force: bool = False,
                     reader_steps: int = READER_STEPS) -> dict:
    """Write checkpoint folder `out`: the generator of `checkpoint` with a trained TextAdapter (replacing any).

    Returns: the adapter's training record (also in out/config.json "training.text_adapter").
    Raises: CheckpointError (no text_norm in the generator), InputError (bad numbers), MissingExtraError,
    OutputError (`out` holds files that are not a checkpoint, without `force`; `out` is the input)."""
    if not 1 <= steps <= 200_000 or not 1 <= augment_per_tuple <= 32 or not 1 <= reader_steps <= 200_000:
        raise InputError("--steps and --reader-steps must be in [1, 200000] and --augment in [1, 32]")
    _io.claim_output_dir(out, "checkpoint", is_checkpoint, inputs=(checkpoint,), force=force)
    torch = require("torch", "train", "Training the text adapter")
    from dataclasses import replace

    from edge_t2i.models import text_encoder
    from edge_t2i.models.checkpoint import load_generator, read_training_info, save_generator
    from edge_t2i.models.networks import NetG

    base = load_generator(checkpoint)
    if not base.config.text_norm:
        raise CheckpointError("the text adapter reads the standardised embedding: this generator was trained "
                              "without text_norm")
    torch.manual_seed(seed)
    model = NetG(replace(base.config, text_adapter=tuple(len(g) for g in GROUPS), phrase_reader=READER_WORDS))
    model.load_state_dict({k: v for k, v in base.state_dict().items()
                           if not k.startswith(("text_adapter.", "phrase_reader."))}, strict=False)

    def standardised(texts: list[str]):  # noqa: ANN202
        return torch.from_numpy(text_encoder.encode(texts)) * model.text_scale + model.text_shift

    log.info("encoding %d canonical captions", math.prod(len(g) for g in GROUPS))
    with torch.no_grad():
        model.text_adapter.table.copy_(canonical_table(standardised)[1])
    texts, labels = labelled_sentences(seed, augment_per_tuple)
    log.info("encoding %d training sentences", len(texts))
    accuracy = fit_classifiers(model.text_adapter, standardised(texts), labels, steps, seed)
    pick = np.random.default_rng(seed).permutation(len(texts))[:READER_SENTENCES]
    reader_accuracy = fit_reader(model.phrase_reader, [texts[i] for i in pick], labels[pick], text_encoder.encode,
                                 steps=reader_steps, seed=seed)
    with torch.no_grad():  # the reader hands the generator table rows: the adapter must keep each one
        table = model.text_adapter.table
        roundtrip = float((model.text_adapter(table) == table).all(1).float().mean())
    if roundtrip < 1.0:
        log.warning("the adapter maps %.2f%% of the canonical captions onto another row", 100 * (1 - roundtrip))
    record = {"val_accuracy": accuracy, "reader_val_accuracy": reader_accuracy, "table_roundtrip": roundtrip,
              "reader_words": READER_WORDS, "reader_sentences": min(len(texts), READER_SENTENCES),
              "reader_steps": reader_steps, "sentences": len(texts), "steps": steps,
              "augment_per_tuple": augment_per_tuple, "seed": seed, "source": str(checkpoint)}
    with _io.atomic_dir(out) as tmp:
        save_generator(tmp, model.eval(), {**read_training_info(checkpoint), "text_adapter": record})
    return record


def is_checkpoint(path: Path) -> bool:
    """A checkpoint folder this tool wrote: config.json with a model config, and the generator weights."""
    from edge_t2i.models.checkpoint import CONFIG_FILE, GENERATOR_FILE

    try:
        return (path / GENERATOR_FILE).is_file() and "model" in json.loads((path / CONFIG_FILE).read_text())
    except (OSError, ValueError, TypeError):
        return False
