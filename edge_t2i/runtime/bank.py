"""The prompt bank: prompts encoded once at conversion, looked up on the device.

No text encoder runs for prompts in the bank. For others, `nearest` finds the
closest entry, and `encode` uses the pack's optional ONNX text encoder.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from edge_t2i import _io
from edge_t2i.data.prompts import MAX_PROMPT_CHARS, MAX_PROMPT_WORDS, check_prompt, normalize_prompt, prompt_words
from edge_t2i.data.spelling import MAX_LEXICON_WORDS, Alternatives, Reading, alternatives, read, vocabulary
from edge_t2i.errors import EdgeT2IError, InputError, PackError, did_you_mean, printable

if TYPE_CHECKING:
    from edge_t2i.runtime.manifest import Manifest
    from edge_t2i.runtime.packfile import PackFile

UnknownPolicy = Literal["error", "nearest", "encode"]
POLICIES = ("error", "nearest", "encode")
MAX_BANK_ENTRIES = 1_000_000
MAX_BANK_DIM = 4096
HINT_SCAN_LIMIT = 50_000     # banks up to this many prompts suggest the closest one (by word overlap) in errors
VOCABULARY_PROMPTS = 50_000  # the prompts whose words typos are corrected against
MAX_NPZ_BYTES = 256 << 20  # a legacy (schema 1) bank.npz: its file and a quarter of what it may unpack to
MAX_BANK_VALUES = 512 * MAX_BANK_ENTRIES  # prompts x dimensions: 10^6 prompts of up to 512-d (2 GB as float32)
MAX_LEXICON_ENTRIES = 20_000
RAW_HITS = 4096  # prompts remembered as typed by `PromptBank.exact`
BANK_FORMAT = "edge-t2i bank v1"
# The last remedy of every "not in the bank" error: where prompts enter a bank.
ADD_TO_BANK = "add it to the bank at conversion (--prompts, or your --bank-embeddings file)"
NORMALIZATION = "nfkc-strip-invisible-casefold-collapse-v1"  # edge_t2i.data.prompts.normalize_prompt


def check_policy(policy: object) -> UnknownPolicy:
    """`policy` if it is one of POLICIES; else InputError naming the closest valid one."""
    if not isinstance(policy, str):
        raise InputError(f"the unknown-prompt policy is one of {', '.join(POLICIES)}, got {type(policy).__name__}")
    if policy not in POLICIES:
        raise InputError(did_you_mean(str(policy), POLICIES, "unknown-prompt policy"))
    return policy  # type: ignore[return-value]


class TextEncoder(Protocol):
    name: str

    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Match:
    prompt: str          # the bank entry used
    similarity: float    # cosine similarity to the request (1.0 for an exact match)
    exact: bool
    index: int           # row of the entry in the bank


def check_lexicon(lexicon: object, where: str) -> dict[str, str]:
    """`lexicon` if it is {phrase: words}: at most MAX_LEXICON_ENTRIES entries, each key 1..MAX_LEXICON_WORDS prompt
    words as `prompt_words` splits them, each value 1..MAX_LEXICON_WORDS such words. Raises PackError otherwise."""
    if not isinstance(lexicon, dict) or len(lexicon) > MAX_LEXICON_ENTRIES:
        raise PackError(f"{where}: its lexicon must be a JSON object of at most {MAX_LEXICON_ENTRIES} phrases")
    for key, value in lexicon.items():
        for text in (key, value):
            words = prompt_words(text) if isinstance(text, str) and len(text) <= 64 else []
            if not (1 <= len(words) <= MAX_LEXICON_WORDS and " ".join(words) == text):
                raise PackError(f"{where}: lexicon entry {printable(str(key))[:40]!r}: phrases and their meanings are "
                                f"1-{MAX_LEXICON_WORDS} normalized words of at most 64 characters")
    return dict(lexicon)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between two directions; the result is unit length."""
    a = a / max(float(np.linalg.norm(a)), 1e-12)
    b = b / max(float(np.linalg.norm(b)), 1e-12)
    dot = float(np.clip(np.dot(a, b), -1.0, 1.0))
    omega = np.arccos(dot)
    if omega < 1e-6:
        out = (1 - t) * a + t * b
    else:
        out = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return (out / max(float(np.linalg.norm(out)), 1e-12)).astype(np.float32)


class PromptBank:
    """Prompts and their sentence embeddings (float32 [N, dim], L2-normalised by the encoder), looked up
    by `normalize_prompt`. Read-only after construction, so safe to share across threads.

    `encoder` (optional): an object with `encode(list[str]) -> float32 [n, dim]` for prompts not in
    the bank (the pack's ONNX MiniLM). `lexicon` (optional): {descriptive phrase: the bank words it means}, applied
    before a prompt is encoded (data/spelling.py; `check_lexicon` gives the bounds).
    Raises PackError if texts and embeddings disagree or hold NaN, or the lexicon is out of bounds."""

    def __init__(self, texts: list[str], embeddings: np.ndarray, encoder_name: str,
                 encoder: TextEncoder | None = None, lexicon: dict[str, str] | None = None):
        if embeddings.ndim != 2 or len(texts) != embeddings.shape[0]:
            raise PackError(f"bank: {len(texts)} texts but embeddings of shape {embeddings.shape}")
        if not texts:
            raise PackError("bank: it holds no prompts")
        self.texts = list(texts)
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        # squared norms by einsum: no [N, dim] temporary (a bank of 10^6 384-d rows is 1.5 GB as float32)
        squares = np.einsum("ij,ij->i", self.embeddings, self.embeddings)
        if not np.isfinite(squares).all():
            raise PackError("bank: embeddings contain NaN, inf, or values too large to be a sentence embedding")
        self._norms = np.maximum(np.sqrt(squares), 1e-12)
        self.encoder_name = encoder_name
        self.encoder = encoder
        self._index = {}
        for i, t in enumerate(self.texts):
            if len(t) > MAX_PROMPT_CHARS:  # before NFKC, which can make one character eighteen
                raise PackError(f"bank prompt {i + 1} is longer than {MAX_PROMPT_CHARS} characters: not a prompt")
            key = normalize_prompt(t)
            if len(key) > 4 * MAX_PROMPT_CHARS or len(prompt_words(key)) > MAX_PROMPT_WORDS:  # words as read
                raise PackError(f"bank prompt {i + 1} is over {MAX_PROMPT_WORDS} words or {4 * MAX_PROMPT_CHARS} "
                                "characters once normalized: not a prompt")
            self._index[key] = i
        self._raw_hits: dict[str, int] = {}
        self._known: frozenset[str] | None = None
        self._same: Alternatives | None = None
        self._lexicon: dict[str, str] = check_lexicon(lexicon or {}, "bank")

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def __len__(self) -> int:
        return len(self.texts)

    def __contains__(self, prompt: object) -> bool:
        return isinstance(prompt, str) and normalize_prompt(prompt) in self._index

    @classmethod
    def load(cls, path: str | os.PathLike[str], encoder: TextEncoder | None = None) -> PromptBank:
        """Read a bank file a user names (e.g. `--bank-embeddings`): `bank.safetensors` (docs/pack-spec.md) or a
        legacy `bank.npz` (read with allow_pickle=False). A pack's bank loads with `from_pack` (its sha256 checked
        on the bytes used). Raises PackError if missing or malformed."""
        from edge_t2i.runtime.packfile import PackFile

        with PackFile(Path(path), None, 0, f"bank {path}") as f:
            return cls._read(f, str(path), encoder)

    @classmethod
    def from_pack(cls, manifest: Manifest, encoder: TextEncoder | None = None) -> PromptBank:
        """The bank of a pack, read as runtime/packfile.py reads every pack file (regular, declared size, sha256 of
        the bytes used), header first: a file larger than its header declares is refused before its data is read.
        Memory: the embeddings as float32 plus the prompt index (MAX_BANK_ENTRIES 384-d prompts: about 2 GB).
        Raises PackError (no bank, missing, altered, malformed, or embeddings of another size than the model's)."""
        from edge_t2i.runtime.packfile import open_file

        if manifest.bank is None:
            raise PackError("this pack has no prompt bank")
        with open_file(manifest, manifest.bank) as f:
            return cls._read(f, manifest.bank, encoder, manifest.embedding_dim, legacy=manifest.schema_version < 2)

    @classmethod
    def _read(cls, f: PackFile, where: str, encoder: TextEncoder | None, dim: int | None = None,
              legacy: bool | None = None) -> PromptBank:
        """`legacy`: whether a .npz may be read (None: either format; a pack of schema 1 only)."""
        head = f.read(2)
        if head == b"PK":  # a zip: the .npz of schema-1 packs, small by their age
            if legacy is False:
                raise PackError(f"bank {where} is a zip (.npz), which only packs of schema 1 hold: re-convert it")
            if f.size > MAX_NPZ_BYTES:
                raise PackError(f"bank {where}: a legacy .npz bank is at most {MAX_NPZ_BYTES} bytes")
            data = head + f.read(f.size)
            f.finish()
            return cls._load_npz(io.BytesIO(data), where, encoder, dim)
        try:
            size = int.from_bytes(head + f.read(6), "little")
            if f.size < 8 or not 2 <= size <= min(_io.MAX_SAFETENSORS_HEADER, f.size - 8):
                raise ValueError(f"header length {size} does not fit the file")
            header, meta = _io.parse_safetensors_header(f.read(size))
            layout = _io.safetensors_layout(header)
            if [x[0] for x in layout] != ["embeddings"] or len(layout[0][2]) != 2:
                raise ValueError("it must hold one 2-D tensor 'embeddings'")
            _, dtype, shape, _, end = layout[0]
            if 8 + size + end != f.size:
                raise ValueError(f"the file is {f.size} bytes, its header declares {8 + size + end}")
            prompts = json.loads(meta.get("prompts", "null"))
            lexicon = json.loads(meta.get("lexicon", "{}"))
        except (ValueError, RecursionError) as exc:
            raise PackError(f"bank {where} is unreadable ({str(exc)[:200]})") from None
        if meta.get("format") != BANK_FORMAT or meta.get("normalization") != NORMALIZATION:
            raise PackError(f"bank {where}: format {meta.get('format')!r:.40} with normalization "
                            f"{meta.get('normalization')!r:.60} is not {BANK_FORMAT!r} / {NORMALIZATION!r}: "
                            "re-convert the pack")
        if not isinstance(prompts, list) or not all(isinstance(t, str) and len(t) <= MAX_PROMPT_CHARS
                                                    for t in prompts):
            raise PackError(f"bank {where}: metadata 'prompts' must be a JSON list of prompts")
        if not 1 <= shape[0] <= MAX_BANK_ENTRIES or shape[0] != len(prompts) or str(shape[1]) != meta.get("dim") \
                or not 1 <= shape[1] <= MAX_BANK_DIM or shape[0] * shape[1] > MAX_BANK_VALUES:
            raise PackError(f"bank {where}: {len(prompts)} prompts, embeddings {list(shape)} and dim "
                            f"{str(meta.get('dim'))[:20]} must agree (at most {MAX_BANK_ENTRIES} prompts, "
                            f"{MAX_BANK_VALUES} values)")
        if dim is not None and shape[1] != dim:  # checked before a byte of the data is read
            raise PackError(f"bank {where} holds {shape[1]}-d embeddings, the generator takes {dim}-d: the bank is "
                            "not this pack's")
        emb = np.empty(shape, np.float32)
        rows = max(1, (8 << 20) // (shape[1] * dtype.itemsize))  # streamed 8 MB at a time into float32
        block = np.empty((min(rows, shape[0]), shape[1]), dtype)
        for start in range(0, shape[0], rows):
            part = block[:min(rows, shape[0] - start)]
            f.readinto(part)
            emb[start:start + len(part)] = part
        f.finish()  # the sha256: nothing read is used before it matches
        return cls(prompts, emb, str(meta.get("encoder", "unknown"))[:200], encoder,
                   check_lexicon(lexicon, f"bank {where}"))

    @classmethod
    def _load_npz(cls, source: io.BytesIO, where: str, encoder: TextEncoder | None, dim: int | None = None) -> PromptBank:
        try:
            with zipfile.ZipFile(source) as z:  # a zip bomb is refused from its members' declared sizes
                if sum(i.file_size for i in z.infolist()) > 4 * MAX_NPZ_BYTES:
                    raise PackError(f"bank {where}: its arrays unpack to more than {4 * MAX_NPZ_BYTES} bytes")
            source.seek(0)
            with np.load(source, allow_pickle=False) as f:
                texts, emb = f["texts"], f["embeddings"]
                name = str(f["encoder"]) if "encoder" in f.files else "unknown"
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise PackError(f"bank {where} is unreadable ({type(exc).__name__}: {str(exc)[:200]})") from None
        if texts.dtype.kind != "U" or texts.ndim != 1 or len(texts) > MAX_BANK_ENTRIES \
                or texts.dtype.itemsize > 4 * MAX_PROMPT_CHARS:
            raise PackError(f"bank {where}: 'texts' must be a 1-D array of strings")
        if emb.dtype not in (np.float16, np.float32) or emb.ndim != 2:
            raise PackError(f"bank {where}: 'embeddings' must be a 2-D float16/float32 array")
        if dim is not None and emb.shape[1] != dim:
            raise PackError(f"bank {where} holds {emb.shape[1]}-d embeddings, the generator takes {dim}-d: the bank "
                            "is not this pack's")
        return cls(texts.tolist(), emb.astype(np.float32), name, encoder)

    def save(self, path: str | os.PathLike[str], dtype: type = np.float16) -> Path:
        """Write the bank as safetensors (docs/pack-spec.md): tensor "embeddings" [N, dim] as `dtype`,
        metadata format, normalization, encoder, dim and the prompts as a JSON list; atomically."""
        meta = {"format": BANK_FORMAT, "normalization": NORMALIZATION, "encoder": self.encoder_name,
                "dim": str(self.dim), "prompts": json.dumps(self.texts, ensure_ascii=False)}
        if self._lexicon:
            meta["lexicon"] = json.dumps(self._lexicon, ensure_ascii=False, sort_keys=True)
        _io.write_safetensors(path, {"embeddings": self.embeddings.astype(dtype)}, meta)
        return Path(path)

    # ---- lookups -----------------------------------------------------------------
    def exact(self, prompt: str) -> np.ndarray | None:
        """float32 [dim] of a prompt in the bank (compared by `normalize_prompt`), or None. Prompts found are
        remembered as typed (up to RAW_HITS of them), so a game's repeated prompt skips the normalisation."""
        i = self._raw_hits.get(prompt)
        if i is None:
            i = self._index.get(normalize_prompt(prompt))
            if i is not None and len(self._raw_hits) < RAW_HITS and len(prompt) <= 1000:
                self._raw_hits[prompt] = i
        return None if i is None else self.embeddings[i]

    def nearest(self, query: str | np.ndarray) -> Match:
        """The bank entry closest (cosine) to a prompt (encoded by the pack's encoder) or to an embedding [dim].

        Raises: InputError (a prompt not in the bank without an encoder; an embedding of the wrong size)."""
        if isinstance(query, str):
            check_prompt(query)
            if query in self:
                i = self._index[normalize_prompt(query)]
                return Match(self.texts[i], 1.0, True, i)
            vec = self._encode_one(query)
        else:
            vec = self._vector(query)
        sims = self.embeddings @ (vec / max(float(np.linalg.norm(vec)), 1e-12))
        sims /= self._norms
        i = int(np.argmax(sims))
        return Match(self.texts[i], float(sims[i]), False, i)

    def lookup(self, prompt: str, policy: UnknownPolicy = "error") -> np.ndarray:
        """float32 [dim] embedding of a prompt. Prompts not in the bank follow `policy`:
        error: raise InputError; nearest: the closest bank entry (by the encoder if the pack has one,
        else by word overlap, Jaccard); encode: run the pack's text encoder (InputError without one)."""
        check_policy(policy)
        check_prompt(prompt)
        found = self.exact(prompt)
        if found is not None:
            return found
        if policy == "encode":
            return self._encode_one(prompt)
        if policy == "nearest":
            match = self.closest(prompt)
            if match is None:
                raise InputError(f"prompt {prompt!r}: no bank prompt shares a word with it, so none is nearest; "
                                 f"pass an embedding instead, or {ADD_TO_BANK}")
            return self.embeddings[match.index]
        remedies = ("pass unknown='nearest' or 'encode' (CLI: --unknown nearest|encode)" if self.encoder is not None
                    else "pass unknown='nearest' (CLI: --unknown nearest) or an embedding (this pack has no text encoder)")
        raise InputError(f"prompt {prompt!r} is not in the bank ({len(self)} prompts){self.nearest_text_hint(prompt)}; "
                         f"{remedies}, or {ADD_TO_BANK}")

    def blend(self, a: str | np.ndarray, b: str | np.ndarray, t: float, policy: UnknownPolicy = "error") -> np.ndarray:
        """Spherical interpolation (slerp) from prompt/embedding `a` (t=0) to `b` (t=1): float32 [dim], unit length.

        Raises: InputError (t outside [0, 1], or a prompt `lookup` refuses under `policy`)."""
        if isinstance(t, bool) or not isinstance(t, (int, float, np.floating)) or not 0 <= t <= 1:
            raise InputError(f"blend t must be a number in [0, 1], got {t!r}")
        for end in (a, b):
            if not isinstance(end, (str, np.ndarray)):
                raise InputError(f"blend takes prompts or embeddings [{self.dim}], got {type(end).__name__}")
        ea = self.lookup(a, policy) if isinstance(a, str) else self._vector(a)
        eb = self.lookup(b, policy) if isinstance(b, str) else self._vector(b)
        return slerp(ea, eb, float(t))

    def _vector(self, x: object) -> np.ndarray:
        """float32 [dim] of a caller's embedding. Raises InputError (not finite float numbers of this size)."""
        try:
            vec = np.asarray(x, np.float32)
        except (TypeError, ValueError) as exc:
            raise InputError(f"an embedding must be {self.dim} float numbers ({exc})") from None
        if vec.shape != (self.dim,) or not np.isfinite(vec).all():
            raise InputError(f"an embedding must be {self.dim} finite float numbers, got shape {list(vec.shape)}")
        return vec

    # ---- helpers -----------------------------------------------------------------
    @property
    def lexicon(self) -> dict[str, str]:
        """{descriptive phrase: the bank words it means} (a copy), as the pack's bank carries it; {} for none."""
        return dict(self._lexicon)

    @property
    def known_words(self) -> frozenset[str]:
        """The words of the bank's prompts (of its first VOCABULARY_PROMPTS): what `reading` corrects typos against,
        built on first use (0.5 s for 50,000 eight-word prompts)."""
        if self._known is None:
            self._known = vocabulary(self._index, VOCABULARY_PROMPTS)
        return self._known

    def reading(self, prompt: str) -> Reading:
        """How `prompt` is read before it is encoded: the lexicon's phrases and one-letter typos of the bank's words
        corrected (data/spelling.py), and the words no bank prompt uses. Raises InputError (not a prompt, or one
        that reads as more than MAX_PROMPT_WORDS words)."""
        check_prompt(prompt)
        if self._same is None:
            self._same = alternatives(self._index, self._lexicon, VOCABULARY_PROMPTS)
        r = read(prompt, self.known_words, self._lexicon, self._whole_words(), self._same)
        if len(r.text.split()) > MAX_PROMPT_WORDS:  # the lexicon's phrases are up to 3 words for 1 typed
            raise InputError(f"prompt {printable(prompt)[:40]!r}... reads as {len(r.text.split())} words with the "
                             f"pack's lexicon: at most {MAX_PROMPT_WORDS}")
        return r

    def _whole_words(self) -> frozenset[str] | None:
        """The encoder's whole-word tokens (3-letter typos are told from words by them), or None without an encoder
        or where it cannot be loaded (`encode` then says why)."""
        try:
            return getattr(self.encoder, "whole_words", None)
        except EdgeT2IError:
            return None

    def explain(self, prompt: str) -> dict:
        """What the runtime makes of `prompt`: {"prompt", "in_bank", "read_as" (the text the encoder gets: the
        prompt with one-letter typos corrected and the lexicon's phrases replaced), "corrected" {typed: used} (both),
        "described" {typed: used} (those of the lexicon, with the bank word after a phrase: "paprika red"),
        "unknown_words" [...] (words no bank prompt uses: the encoder reads them by meaning), "nearest":
        {"prompt", "similarity"} or None (the bank prompt closest to the embedding drawn: at similarity 1.0 the same
        image as that prompt's, as a phrase reader gives for the captions it knows; lower, what was drawn is no bank
        prompt)}.
        Raises: InputError; what the encoder raises (MissingExtraError, PackError)."""
        if prompt in self:
            return {"prompt": prompt, "in_bank": True, "read_as": prompt, "corrected": {}, "unknown_words": [],
                    "described": {},
                    "nearest": {"prompt": self.texts[self._index[normalize_prompt(prompt)]], "similarity": 1.0}}
        r = self.reading(prompt)
        match = self.closest(prompt)
        return {"prompt": prompt, "in_bank": False, "read_as": r.text if r.corrected else prompt,
                "corrected": dict(r.corrected), "unknown_words": list(r.unknown),
                "described": {k: v for k, v in r.corrected.items() if k in self._lexicon or " " in k},  # typos: 1 word
                "nearest": None if match is None else {"prompt": match.prompt, "similarity": round(match.similarity, 4)}}

    def _encode_one(self, prompt: str) -> np.ndarray:
        if self.encoder is not None:
            r = self.reading(prompt)
            prompt = r.text if r.corrected else prompt  # unchanged unless a typo was corrected
        if self.encoder is None:
            raise InputError(f"prompt {prompt!r} is not in the bank and the pack has no text encoder (it was converted "
                             "with --no-encoder, or from your own encoder's bank): pass an embedding instead, "
                             f"unknown='nearest', or {ADD_TO_BANK}")
        vec = self.encoder.encode([prompt])[0]
        if vec.shape != (self.dim,):
            raise PackError(f"the pack's encoder gives {vec.shape[0]}-d vectors, the bank holds {self.dim}-d")
        return vec.astype(np.float32)

    def closest(self, prompt: str) -> Match | None:
        """The bank entry `nearest` picks and the error message suggests (one rule for both): by the pack's
        encoder (cosine) where it has one, else by word overlap (Jaccard of normalised words; None when no
        entry shares a word). Raises: MissingExtraError (the encoder needs `tokenizers`)."""
        check_prompt(prompt)
        if self.encoder is not None or prompt in self:
            return self.nearest(prompt)
        words = set(self.reading(prompt).text.split())  # typos of the bank's words corrected, lexicon applied
        scores = [len(words & set(k.split())) / (len(words | set(k.split())) or 1) for k in self._index]
        best = int(np.argmax(scores))
        if scores[best] == 0:
            return None
        i = list(self._index.values())[best]
        return Match(self.texts[i], float(scores[best]), False, i)

    def nearest_text_hint(self, prompt: str) -> str:
        if self.encoder is None and len(self) > HINT_SCAN_LIMIT:  # a word-overlap scan of every prompt: too slow
            return ""                                             # for an error message (1.4 s at 140k prompts)
        try:
            match = self.closest(prompt)
        except EdgeT2IError:  # no encoder extra installed: the suggestion is optional, the error is not
            return ""
        return f"; closest: {match.prompt!r}" if match is not None else ""
