// edge-t2i in the browser: run a pack (docs/pack-spec.md) with ONNX Runtime Web.
//
// A reference implementation for engines that are not Python: everything the Python runtime does for
// a prompt in the bank and a seed is here, in plain JavaScript, in the order the spec gives it:
//
//   1. noise        seed -> z, "splitmix64-polar-v1", bit for bit the Python floats
//   2. prompts      the lookup key (NFKC, invisible characters removed, lower case, whitespace collapsed)
//   3. bank         bank.safetensors -> prompts + float32 embeddings
//   4. blend        slerp between two embeddings, as edge_t2i/runtime/bank.py `slerp`
//   5. pixels       the generator's float [B, C, H, W] in [-1, 1] -> uint8 [H, W, C] (RGB, or RGBA for sprites)
//   6. pack         manifest.json, sha256 checks, one ONNX Runtime session per precision
//   7. page         prompt pickers, a typed sentence, blend slider, seed, a live 4x2 grid, images/s
//
// Prompts outside the bank (a typed sentence) go through text.js: the bank's lexicon and typo correction, the
// pack's tokenizer, text encoder and phrase reader, as the Python runtime reads them.
//
// `window.edgeT2I` exposes the pieces (noise, generate, the current embedding...) for tests.
// `ort` is the global of ort.webgpu.min.js (onnxruntime-web), loaded by index.html before this module.

/* global ort */

import {
  MAX_LEXICON_WORDS, TextReader, alternatives, checkTokenizer, promptWords, readPrompt, vocabulary,
} from "./text.js";

// ---------------------------------------------------------------------------------------------------
// 1. Noise: seed -> z ("splitmix64-polar-v1")
//
// Seeds are unsigned 64-bit integers. JavaScript Numbers are doubles (exact integers only up to 2^53),
// so the 64-bit integer arithmetic uses BigInt, reduced modulo 2^64 after every + and *. Everything
// else is double arithmetic in the order written: JavaScript never fuses a*b+c, and Math.sqrt is
// correctly rounded, so the doubles are the ones Python/NumPy computes.
// ---------------------------------------------------------------------------------------------------

const MASK64 = 0xFFFFFFFFFFFFFFFFn;          // 2^64 - 1
const GAMMA = 0x9E3779B97F4A7C15n;           // SplitMix64's increment (the golden ratio)
const MIX1 = 0xBF58476D1CE4E5B9n;
const MIX2 = 0x94D049BB133111EBn;
const LN2 = 0.6931471805599453;              // the double nearest ln 2
const LN_TERMS = 20;                         // terms of the atanh series in portableLn
const NOISE_NAME = "splitmix64-polar-v1";
const MAX_PROMPT_CHARS = 1000;               // as the Python runtime (edge_t2i/data/prompts.py check_prompt)
const MAX_PROMPT_WORDS = 64;

/** A seed (BigInt, safe-integer Number, or decimal string) as a BigInt in 0..2^64-1; RangeError otherwise. */
function toSeed(seed) {
  let s;
  if (typeof seed === "bigint") s = seed;
  else if (typeof seed === "number" && Number.isSafeInteger(seed)) s = BigInt(seed);
  else if (typeof seed === "string" && /^\s*\d+\s*$/.test(seed)) s = BigInt(seed.trim());
  else throw new RangeError(`a seed must be an integer in 0..2^64-1, got ${String(seed)}`);
  if (s < 0n || s > MASK64) throw new RangeError(`a seed must be an integer in 0..2^64-1, got ${s}`);
  return s;
}

/** SplitMix64 (Steele, Lea, Flood, OOPSLA 2014): a 64-bit state, one 64-bit output per call. */
class SplitMix64 {
  constructor(seed) {
    this.state = toSeed(seed);
  }

  next() {
    this.state = (this.state + GAMMA) & MASK64;
    let x = this.state;
    x = ((x ^ (x >> 30n)) * MIX1) & MASK64;
    x = ((x ^ (x >> 27n)) * MIX2) & MASK64;
    return x ^ (x >> 31n);
  }

  /** A double in [0, 1): the top 53 bits times 2^-53 (both steps exact). */
  uniform() {
    return Number(this.next() >> 11n) * 2 ** -53;
  }
}

// frexp reads a double's bits: a Float64Array and a BigUint64Array over the same 8 bytes.
const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);
const EXPONENT_BITS = 0x7FF0000000000000n;

/** [m, e] with x = m * 2^e and m in [0.5, 1), for a finite x > 0 (C's frexp; exact). */
function frexp(x) {
  let shift = 0;
  f64[0] = x;
  if ((u64[0] & EXPONENT_BITS) === 0n) {  // subnormal: scale into the normal range first (exact)
    f64[0] = x * 2 ** 64;
    shift = -64;
  }
  const bits = u64[0];
  const biased = Number((bits & EXPONENT_BITS) >> 52n);   // x = 1.f * 2^(biased - 1023)
  u64[0] = (bits & ~EXPONENT_BITS & MASK64) | (1022n << 52n);  // same sign and fraction, 0.1f in binary
  return [f64[0], biased - 1022 + shift];
}

/** ln(s) for s in (0, 1) from +, -, *, / only (never Math.log, whose last bit varies by engine):
 * s = m * 2^e, ln m = 2 atanh(t) with t = (m - 1) / (m + 1), Horner over the terms 1 / (2k + 1). */
function portableLn(s) {
  const [m, e] = frexp(s);
  const t = (m - 1.0) / (m + 1.0);
  const t2 = t * t;
  let p = 1.0 / (2 * LN_TERMS + 1);
  for (let k = LN_TERMS - 1; k >= 0; k--) p = p * t2 + 1.0 / (2 * k + 1);
  return e * LN2 + (2.0 * t) * p;
}

/** z for one seed: Float32Array [nz] of standard normals (Marsaglia's polar method on SplitMix64). */
function noise(seed, nz) {
  const rng = new SplitMix64(seed);
  const out = new Float32Array(nz);
  let n = 0;
  while (n < nz) {
    const a = 2.0 * rng.uniform() - 1.0;
    const b = 2.0 * rng.uniform() - 1.0;
    const s = a * a + b * b;
    if (s <= 0.0 || s >= 1.0) continue;  // outside the unit disc: reject the pair
    const f = Math.sqrt((-2.0 * portableLn(s)) / s);
    out[n++] = Math.fround(a * f);        // round each to binary32
    if (n < nz) out[n++] = Math.fround(b * f);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// 2. Prompts: the lookup key ("nfkc-strip-invisible-casefold-collapse-v1")
// ---------------------------------------------------------------------------------------------------

const INVISIBLE = /[\u200B\u200C\u200D\u2060\uFEFF]/g;
// Python's \s (str.isspace) is JavaScript's \s plus the information separators U+001C..U+001F and NEL.
const WHITESPACE = /[\s\x1C-\x1F\x85]+/g;

// Python's str.casefold where it differs from JavaScript's toLowerCase ("ß" -> "ss", "ς" -> "σ", Cherokee,
// and letters whose case the two Unicode versions disagree on): FOLD_FROM's i-th code point -> FOLD_TO[i].
// Made by comparing every code point's casefold (Python 3.11, Unicode 14.0) with Node 20's toLowerCase.
const FOLD_FROM = "\u00b5\u00df\u0149\u017f\u01f0\u0345\u0390\u03b0\u03c2\u03d0\u03d1\u03d5\u03d6\u03f0\u03f1\u03f5\u0587\u13a0\u13a1\u13a2\u13a3\u13a4\u13a5\u13a6\u13a7\u13a8\u13a9\u13aa\u13ab\u13ac\u13ad\u13ae\u13af\u13b0\u13b1\u13b2\u13b3\u13b4\u13b5\u13b6\u13b7\u13b8\u13b9\u13ba\u13bb\u13bc\u13bd\u13be\u13bf\u13c0\u13c1\u13c2\u13c3\u13c4\u13c5\u13c6\u13c7\u13c8\u13c9\u13ca\u13cb\u13cc\u13cd\u13ce\u13cf\u13d0\u13d1\u13d2\u13d3\u13d4\u13d5\u13d6\u13d7\u13d8\u13d9\u13da\u13db\u13dc\u13dd\u13de\u13df\u13e0\u13e1\u13e2\u13e3\u13e4\u13e5\u13e6\u13e7\u13e8\u13e9\u13ea\u13eb\u13ec\u13ed\u13ee\u13ef\u13f0\u13f1\u13f2\u13f3\u13f4\u13f5\u13f8\u13f9\u13fa\u13fb\u13fc\u13fd\u1c80\u1c81\u1c82\u1c83\u1c84\u1c85\u1c86\u1c87\u1c88\u1c89\u1e96\u1e97\u1e98\u1e99\u1e9a\u1e9b\u1e9e\u1f50\u1f52\u1f54\u1f56\u1f80\u1f81\u1f82\u1f83\u1f84\u1f85\u1f86\u1f87\u1f88\u1f89\u1f8a\u1f8b\u1f8c\u1f8d\u1f8e\u1f8f\u1f90\u1f91\u1f92\u1f93\u1f94\u1f95\u1f96\u1f97\u1f98\u1f99\u1f9a\u1f9b\u1f9c\u1f9d\u1f9e\u1f9f\u1fa0\u1fa1\u1fa2\u1fa3\u1fa4\u1fa5\u1fa6\u1fa7\u1fa8\u1fa9\u1faa\u1fab\u1fac\u1fad\u1fae\u1faf\u1fb2\u1fb3\u1fb4\u1fb6\u1fb7\u1fbc\u1fbe\u1fc2\u1fc3\u1fc4\u1fc6\u1fc7\u1fcc\u1fd2\u1fd3\u1fd6\u1fd7\u1fe2\u1fe3\u1fe4\u1fe6\u1fe7\u1ff2\u1ff3\u1ff4\u1ff6\u1ff7\u1ffc\ua7cb\ua7cc\ua7ce\ua7d2\ua7d4\ua7da\ua7dc\uab70\uab71\uab72\uab73\uab74\uab75\uab76\uab77\uab78\uab79\uab7a\uab7b\uab7c\uab7d\uab7e\uab7f\uab80\uab81\uab82\uab83\uab84\uab85\uab86\uab87\uab88\uab89\uab8a\uab8b\uab8c\uab8d\uab8e\uab8f\uab90\uab91\uab92\uab93\uab94\uab95\uab96\uab97\uab98\uab99\uab9a\uab9b\uab9c\uab9d\uab9e\uab9f\uaba0\uaba1\uaba2\uaba3\uaba4\uaba5\uaba6\uaba7\uaba8\uaba9\uabaa\uabab\uabac\uabad\uabae\uabaf\uabb0\uabb1\uabb2\uabb3\uabb4\uabb5\uabb6\uabb7\uabb8\uabb9\uabba\uabbb\uabbc\uabbd\uabbe\uabbf\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06\ufb13\ufb14\ufb15\ufb16\ufb17\ud803\udd50\ud803\udd51\ud803\udd52\ud803\udd53\ud803\udd54\ud803\udd55\ud803\udd56\ud803\udd57\ud803\udd58\ud803\udd59\ud803\udd5a\ud803\udd5b\ud803\udd5c\ud803\udd5d\ud803\udd5e\ud803\udd5f\ud803\udd60\ud803\udd61\ud803\udd62\ud803\udd63\ud803\udd64\ud803\udd65\ud81b\udea0\ud81b\udea1\ud81b\udea2\ud81b\udea3\ud81b\udea4\ud81b\udea5\ud81b\udea6\ud81b\udea7\ud81b\udea8\ud81b\udea9\ud81b\udeaa\ud81b\udeab\ud81b\udeac\ud81b\udead\ud81b\udeae\ud81b\udeaf\ud81b\udeb0\ud81b\udeb1\ud81b\udeb2\ud81b\udeb3\ud81b\udeb4\ud81b\udeb5\ud81b\udeb6\ud81b\udeb7\ud81b\udeb8";
const FOLD_TO = ["\u03bc", "ss", "\u02bcn", "s", "j\u030c", "\u03b9", "\u03b9\u0308\u0301", "\u03c5\u0308\u0301", "\u03c3", "\u03b2", "\u03b8", "\u03c6", "\u03c0", "\u03ba", "\u03c1", "\u03b5", "\u0565\u0582", "\u13a0", "\u13a1", "\u13a2", "\u13a3", "\u13a4", "\u13a5", "\u13a6", "\u13a7", "\u13a8", "\u13a9", "\u13aa", "\u13ab", "\u13ac", "\u13ad", "\u13ae", "\u13af", "\u13b0", "\u13b1", "\u13b2", "\u13b3", "\u13b4", "\u13b5", "\u13b6", "\u13b7", "\u13b8", "\u13b9", "\u13ba", "\u13bb", "\u13bc", "\u13bd", "\u13be", "\u13bf", "\u13c0", "\u13c1", "\u13c2", "\u13c3", "\u13c4", "\u13c5", "\u13c6", "\u13c7", "\u13c8", "\u13c9", "\u13ca", "\u13cb", "\u13cc", "\u13cd", "\u13ce", "\u13cf", "\u13d0", "\u13d1", "\u13d2", "\u13d3", "\u13d4", "\u13d5", "\u13d6", "\u13d7", "\u13d8", "\u13d9", "\u13da", "\u13db", "\u13dc", "\u13dd", "\u13de", "\u13df", "\u13e0", "\u13e1", "\u13e2", "\u13e3", "\u13e4", "\u13e5", "\u13e6", "\u13e7", "\u13e8", "\u13e9", "\u13ea", "\u13eb", "\u13ec", "\u13ed", "\u13ee", "\u13ef", "\u13f0", "\u13f1", "\u13f2", "\u13f3", "\u13f4", "\u13f5", "\u13f0", "\u13f1", "\u13f2", "\u13f3", "\u13f4", "\u13f5", "\u0432", "\u0434", "\u043e", "\u0441", "\u0442", "\u0442", "\u044a", "\u0463", "\ua64b", "\u1c89", "h\u0331", "t\u0308", "w\u030a", "y\u030a", "a\u02be", "\u1e61", "ss", "\u03c5\u0313", "\u03c5\u0313\u0300", "\u03c5\u0313\u0301", "\u03c5\u0313\u0342", "\u1f00\u03b9", "\u1f01\u03b9", "\u1f02\u03b9", "\u1f03\u03b9", "\u1f04\u03b9", "\u1f05\u03b9", "\u1f06\u03b9", "\u1f07\u03b9", "\u1f00\u03b9", "\u1f01\u03b9", "\u1f02\u03b9", "\u1f03\u03b9", "\u1f04\u03b9", "\u1f05\u03b9", "\u1f06\u03b9", "\u1f07\u03b9", "\u1f20\u03b9", "\u1f21\u03b9", "\u1f22\u03b9", "\u1f23\u03b9", "\u1f24\u03b9", "\u1f25\u03b9", "\u1f26\u03b9", "\u1f27\u03b9", "\u1f20\u03b9", "\u1f21\u03b9", "\u1f22\u03b9", "\u1f23\u03b9", "\u1f24\u03b9", "\u1f25\u03b9", "\u1f26\u03b9", "\u1f27\u03b9", "\u1f60\u03b9", "\u1f61\u03b9", "\u1f62\u03b9", "\u1f63\u03b9", "\u1f64\u03b9", "\u1f65\u03b9", "\u1f66\u03b9", "\u1f67\u03b9", "\u1f60\u03b9", "\u1f61\u03b9", "\u1f62\u03b9", "\u1f63\u03b9", "\u1f64\u03b9", "\u1f65\u03b9", "\u1f66\u03b9", "\u1f67\u03b9", "\u1f70\u03b9", "\u03b1\u03b9", "\u03ac\u03b9", "\u03b1\u0342", "\u03b1\u0342\u03b9", "\u03b1\u03b9", "\u03b9", "\u1f74\u03b9", "\u03b7\u03b9", "\u03ae\u03b9", "\u03b7\u0342", "\u03b7\u0342\u03b9", "\u03b7\u03b9", "\u03b9\u0308\u0300", "\u03b9\u0308\u0301", "\u03b9\u0342", "\u03b9\u0308\u0342", "\u03c5\u0308\u0300", "\u03c5\u0308\u0301", "\u03c1\u0313", "\u03c5\u0342", "\u03c5\u0308\u0342", "\u1f7c\u03b9", "\u03c9\u03b9", "\u03ce\u03b9", "\u03c9\u0342", "\u03c9\u0342\u03b9", "\u03c9\u03b9", "\ua7cb", "\ua7cc", "\ua7ce", "\ua7d2", "\ua7d4", "\ua7da", "\ua7dc", "\u13a0", "\u13a1", "\u13a2", "\u13a3", "\u13a4", "\u13a5", "\u13a6", "\u13a7", "\u13a8", "\u13a9", "\u13aa", "\u13ab", "\u13ac", "\u13ad", "\u13ae", "\u13af", "\u13b0", "\u13b1", "\u13b2", "\u13b3", "\u13b4", "\u13b5", "\u13b6", "\u13b7", "\u13b8", "\u13b9", "\u13ba", "\u13bb", "\u13bc", "\u13bd", "\u13be", "\u13bf", "\u13c0", "\u13c1", "\u13c2", "\u13c3", "\u13c4", "\u13c5", "\u13c6", "\u13c7", "\u13c8", "\u13c9", "\u13ca", "\u13cb", "\u13cc", "\u13cd", "\u13ce", "\u13cf", "\u13d0", "\u13d1", "\u13d2", "\u13d3", "\u13d4", "\u13d5", "\u13d6", "\u13d7", "\u13d8", "\u13d9", "\u13da", "\u13db", "\u13dc", "\u13dd", "\u13de", "\u13df", "\u13e0", "\u13e1", "\u13e2", "\u13e3", "\u13e4", "\u13e5", "\u13e6", "\u13e7", "\u13e8", "\u13e9", "\u13ea", "\u13eb", "\u13ec", "\u13ed", "\u13ee", "\u13ef", "ff", "fi", "fl", "ffi", "ffl", "st", "st", "\u0574\u0576", "\u0574\u0565", "\u0574\u056b", "\u057e\u0576", "\u0574\u056d", "\ud803\udd50", "\ud803\udd51", "\ud803\udd52", "\ud803\udd53", "\ud803\udd54", "\ud803\udd55", "\ud803\udd56", "\ud803\udd57", "\ud803\udd58", "\ud803\udd59", "\ud803\udd5a", "\ud803\udd5b", "\ud803\udd5c", "\ud803\udd5d", "\ud803\udd5e", "\ud803\udd5f", "\ud803\udd60", "\ud803\udd61", "\ud803\udd62", "\ud803\udd63", "\ud803\udd64", "\ud803\udd65", "\ud81b\udea0", "\ud81b\udea1", "\ud81b\udea2", "\ud81b\udea3", "\ud81b\udea4", "\ud81b\udea5", "\ud81b\udea6", "\ud81b\udea7", "\ud81b\udea8", "\ud81b\udea9", "\ud81b\udeaa", "\ud81b\udeab", "\ud81b\udeac", "\ud81b\udead", "\ud81b\udeae", "\ud81b\udeaf", "\ud81b\udeb0", "\ud81b\udeb1", "\ud81b\udeb2", "\ud81b\udeb3", "\ud81b\udeb4", "\ud81b\udeb5", "\ud81b\udeb6", "\ud81b\udeb7", "\ud81b\udeb8"];
const FOLD = new Map(Array.from(FOLD_FROM, (c, i) => [c, FOLD_TO[i]]));

/** Python's str.casefold: toLowerCase, except where the FOLD table says otherwise. */
function casefold(text) {
  let out = "";
  for (const c of text) out += FOLD.get(c) ?? c.toLowerCase();
  return out;
}

/** The comparison key of a prompt: NFKC, zero-width characters removed, case folded, whitespace runs
 * -> one space, trimmed (edge_t2i/data/prompts.py normalize_prompt). */
function normalizePrompt(text) {
  return casefold(String(text).normalize("NFKC").replace(INVISIBLE, "")).replace(WHITESPACE, " ").trim();
}

// ---------------------------------------------------------------------------------------------------
// 3. Bank: bank.safetensors -> {prompts, embeddings (Float32Array rows * dim), index}
// ---------------------------------------------------------------------------------------------------

/** An IEEE half-precision bit pattern as a Number (exact: every half is a float32 and a double). */
function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1F;
  const fraction = h & 0x3FF;
  if (exponent === 0) return sign * fraction * 2 ** -24;               // zero or subnormal
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** Parse bank.safetensors: u64 little-endian header length N, N bytes of JSON, then the tensor bytes. */
function parseBank(buffer) {
  const view = new DataView(buffer);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > buffer.byteLength - 8) throw new Error("bank: header length past the end of the file");
  const header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(buffer, 8, headerLength)));
  const meta = header.__metadata__ || {};
  if (meta.format !== "edge-t2i bank v1") throw new Error(`bank: format ${meta.format} is not "edge-t2i bank v1"`);
  const info = header.embeddings;
  const [rows, dim] = info.shape;
  const [begin, end] = info.data_offsets;
  const width = { F16: 2, F32: 4 }[info.dtype];
  if (!width) throw new Error(`bank: embeddings of dtype ${info.dtype} (expected F16 or F32)`);
  if (end - begin !== rows * dim * width || 8 + headerLength + end > buffer.byteLength) {
    throw new Error("bank: embeddings' data_offsets do not match their shape");
  }
  const data = new DataView(buffer, 8 + headerLength + begin, end - begin);
  const embeddings = new Float32Array(rows * dim);
  for (let i = 0; i < rows * dim; i++) {
    embeddings[i] = width === 2 ? halfToFloat(data.getUint16(2 * i, true)) : data.getFloat32(4 * i, true);
  }
  const prompts = JSON.parse(meta.prompts);
  if (prompts.length !== rows) throw new Error(`bank: ${prompts.length} prompts but ${rows} embeddings`);
  const keys = prompts.map(normalizePrompt);
  keys.forEach((key, i) => {  // as bank.py: a bank prompt is a prompt (the reading's work is bounded by it)
    if (prompts[i].length > 1000 || key.length > 4000 || promptWords(key).length > MAX_PROMPT_WORDS) {
      throw new Error(`bank: prompt ${i + 1} is over ${MAX_PROMPT_WORDS} words or 1000 characters: not a prompt`);
    }
  });
  const lexicon = checkLexicon(meta.lexicon ? JSON.parse(meta.lexicon) : {});
  return { prompts, keys, embeddings, rows, dim, lexicon, index: new Map(keys.map((k, i) => [k, i])) };
}

const MAX_LEXICON_ENTRIES = 20000;

/** The bank's lexicon as a Map, if it is what edge_t2i/runtime/bank.py check_lexicon accepts: at most
 * MAX_LEXICON_ENTRIES phrases, each phrase and meaning 1-3 words of their own normalized form, <= 64 characters. */
function checkLexicon(raw) {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error("bank: its lexicon is not an object");
  const entries = Object.entries(raw);
  if (entries.length > MAX_LEXICON_ENTRIES) throw new Error(`bank: its lexicon has over ${MAX_LEXICON_ENTRIES} phrases`);
  const plain = (t) => {
    if (typeof t !== "string" || t.length > 64) return false;
    const words = promptWords(normalizePrompt(t));
    return words.length >= 1 && words.length <= MAX_LEXICON_WORDS && words.join(" ") === t;
  };
  for (const [key, value] of entries) {
    if (!plain(key) || !plain(value)) throw new Error(`bank: lexicon entry ${JSON.stringify(key).slice(0, 40)} is not 1-3 normalized words`);
  }
  return new Map(entries);
}

/** Row i of the bank as a Float32Array [dim] (a view, not a copy). */
function bankRow(bank, i) {
  return bank.embeddings.subarray(i * bank.dim, (i + 1) * bank.dim);
}

// ---------------------------------------------------------------------------------------------------
// 4. Blend: spherical interpolation, as edge_t2i/runtime/bank.py `slerp` (PromptBank.blend)
// ---------------------------------------------------------------------------------------------------

function norm(v) {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i] * v[i];
  return Math.sqrt(sum);
}

/** From direction a (t = 0) to b (t = 1) along the great circle; the result is unit length. */
function slerp(a, b, t) {
  const na = Math.max(norm(a), 1e-12);
  const nb = Math.max(norm(b), 1e-12);
  const ua = Array.from(a, (x) => x / na);
  const ub = Array.from(b, (x) => x / nb);
  let dot = 0;
  for (let i = 0; i < ua.length; i++) dot += ua[i] * ub[i];
  const omega = Math.acos(Math.min(1, Math.max(-1, dot)));
  let out;
  if (omega < 1e-6) {  // (nearly) the same direction: linear is exact enough and avoids 0 / 0
    out = ua.map((x, i) => (1 - t) * x + t * ub[i]);
  } else {
    const sa = Math.sin((1 - t) * omega);
    const sb = Math.sin(t * omega);
    const so = Math.sin(omega);
    out = ua.map((x, i) => (sa * x + sb * ub[i]) / so);
  }
  const n = Math.max(norm(out), 1e-12);
  return Float32Array.from(out, (x) => x / n);
}

// ---------------------------------------------------------------------------------------------------
// 5. Pixels: p = round((clamp(x, -1, 1) + 1) * 127.5), round half to even, CHW -> HWC
// ---------------------------------------------------------------------------------------------------

/** Round to the nearest integer, ties to the even one (NumPy's rint; Math.round rounds ties up). */
function roundHalfEven(v) {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** One output value -> one byte. Python computes in float32 (x + 1, then * 127.5, each rounded to
 * binary32); Math.fround reproduces that (a double result rounded to float32 is the float32 result). */
function toByte(x) {
  const c = Math.min(1, Math.max(-1, x));
  return roundHalfEven(Math.fround(Math.fround(c + 1) * 127.5));
}

/** Image b of a float32 [B, C, H, W] output as uint8 [H * W * C] (row-major, channels last): C = 3, RGB, or
 * C = 4, premultiplied RGBA (a sprite pack). */
function toUint8(data, b, height, width, channels = 3) {
  const plane = height * width;
  const base = b * channels * plane;
  const out = new Uint8Array(plane * channels);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < channels; c++) out[p * channels + c] = toByte(data[base + c * plane + p]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// 6. Pack: manifest, sha256 checks, sessions
// ---------------------------------------------------------------------------------------------------

const PACK = new URL("pack/", location.href);  // serve.py: the pack's files (those in its manifest)
const ORT_DIST = new URL("ort/", location.href); // serve.py: onnxruntime-web's dist folder
const params = new URLSearchParams(location.search);

async function fetchBytes(name) {
  const response = await fetch(new URL(name, PACK));
  if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Check a file's bytes against manifest.files[name].sha256; crypto.subtle exists only in secure
 * contexts (https, localhost), so elsewhere the check is skipped (returns false). */
async function verify(manifest, name, bytes) {
  const want = manifest.files && manifest.files[name] && manifest.files[name].sha256;
  if (!want) throw new Error(`${name} is not in the manifest's files`);
  if (!(globalThis.crypto && crypto.subtle)) return false;
  const got = hex(await crypto.subtle.digest("SHA-256", bytes));
  if (got !== want) throw new Error(`${name}: sha256 ${got} does not match the manifest (${want})`);
  return true;
}

/** The pack's generator: {nz, dim, resolution}; dim 0 for an unconditional one (conditioning "none": z alone). */
function checkManifest(m) {
  if (m.schema_version > 3) throw new Error(`pack schema ${m.schema_version} is newer than this page (3)`);
  const name = m.noise && m.noise.name;
  if (name !== NOISE_NAME) throw new Error(`pack noise ${name} is not ${NOISE_NAME}: re-convert the pack`);
  const unconditional = m.conditioning === "none";
  if (!unconditional && !m.bank) throw new Error("the pack has no prompt bank");
  const inputs = m.io.inputs.map((x) => x.name);
  const outputs = m.io.outputs.map((x) => x.name);
  const expected = unconditional ? ["z"] : ["z", "embedding"];
  if (inputs.join() !== expected.join() || !outputs.includes("image")) {
    throw new Error(`the generator's IO is ${inputs} -> ${outputs}, not ${expected} -> image`);
  }
  const channels = m.model.channels || 3;  // 4: a sprite pack, premultiplied RGBA
  if (channels !== 3 && channels !== 4) throw new Error(`the generator draws ${channels} channels, not 3 or 4`);
  return { nz: m.model.nz, dim: unconditional ? 0 : m.model.cond_dim, resolution: m.model.resolution, channels };
}

const pack = { manifest: null, spec: null, bank: null, verified: [] };
const sessions = new Map();  // precision -> Promise<{session, backend}>
let backendNote = "";

/** Use WebGPU where the browser has an adapter (and ?backend=wasm does not say otherwise). */
async function webgpuAvailable() {
  if (params.get("backend") === "wasm" || !navigator.gpu) return false;
  try {
    return (await navigator.gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}

async function createSession(bytes) {
  if (await webgpuAvailable()) {
    try {
      const session = await ort.InferenceSession.create(bytes, { executionProviders: ["webgpu"] });
      return { session, backend: "webgpu" };
    } catch (err) {
      console.info("WebGPU session failed, using WebAssembly:", err);  // silent fallback
    }
  }
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  return { session, backend: "wasm" };
}

/** The session for a precision (int8 | fp16 | fp32), made on first use: fetch, sha256, create. */
function getSession(precision) {
  if (!sessions.has(precision)) {
    const make = async () => {
      const file = pack.manifest.models[precision];
      if (!file) throw new Error(`the pack has no ${precision} model`);
      const bytes = await fetchBytes(file);
      if (await verify(pack.manifest, file, bytes)) pack.verified.push(file);
      return createSession(new Uint8Array(bytes));
    };
    sessions.set(precision, make().catch((err) => {
      sessions.delete(precision);  // let a later call try again
      throw err;
    }));
  }
  return sessions.get(precision);
}

// One run at a time: an ONNX Runtime Web session does not take concurrent runs.
let queue = Promise.resolve();
function exclusive(task) {
  const result = queue.then(task);
  queue = result.catch(() => {});
  return result;
}

/** Run the generator: embeddings Float32Array [B * dim], seeds [B] -> Float32Array [B, 3, H, W].
 * A WebGPU session that fails to run is replaced by a WebAssembly one, once. */
async function infer(precision, embeddings, seeds) {
  const { session, backend } = await getSession(precision);
  try {
    return await runSession(session, embeddings, seeds);
  } catch (err) {
    if (backend !== "webgpu") throw err;
    console.info("WebGPU run failed, using WebAssembly:", err);
    const bytes = new Uint8Array(await fetchBytes(pack.manifest.models[precision]));
    const wasm = ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] })
      .then((s) => ({ session: s, backend: "wasm" }));
    sessions.set(precision, wasm);
    backendNote = " (WebGPU failed)";
    return runSession((await wasm).session, embeddings, seeds);
  }
}

async function runSession(session, embeddings, seeds) {
  const { nz, dim } = pack.spec;
  const batch = seeds.length;
  const z = new Float32Array(batch * nz);
  seeds.forEach((seed, i) => z.set(noise(seed, nz), i * nz));
  const feeds = { z: new ort.Tensor("float32", z, [batch, nz]) };
  if (dim > 0) feeds.embedding = new ort.Tensor("float32", embeddings, [batch, dim]);
  const { image } = await exclusive(() => session.run(feeds));
  return image.getData();  // float32 [batch, 3, H, W] (copied from the GPU where it ran there)
}

/** One image for a prompt in the bank: uint8 RGB [H * W * 3], what `edge_t2i.load(pack, precision)
 * .generate(prompt, seeds=[seed])[0]` gives (up to the last bit of the two ONNX Runtimes). */
async function generate(promptText, seed, precision = "int8") {
  await ready;
  if (pack.spec.dim === 0) {  // an unconditional pack: the seed alone (promptText must be null)
    if (promptText !== null) throw new Error("this pack's generator is unconditional: it takes no prompt");
    return toUint8(await infer(precision, new Float32Array(0), [toSeed(seed)]), 0, pack.spec.resolution,
                   pack.spec.resolution, pack.spec.channels);
  }
  if (typeof promptText !== "string" || promptText.length > MAX_PROMPT_CHARS) {
    throw new Error(`a prompt is a string of at most ${MAX_PROMPT_CHARS} characters`);
  }
  const { embedding } = await embedPrompt(promptText);
  const data = await infer(precision, embedding, [toSeed(seed)]);
  return toUint8(data, 0, pack.spec.resolution, pack.spec.resolution, pack.spec.channels);
}

let textReader = null;  // Promise<TextReader>, made on the first prompt outside the bank

/** The pack's text encoder (and phrase reader), fetched, sha256-checked and loaded on first use. */
function getTextReader() {
  const files = pack.manifest.encoder;
  if (!files) return Promise.reject(new Error("the pack has no text encoder (converted with --no-encoder): "
    + "pick a prompt of the bank"));
  if (!textReader) {
    const load = async (name) => {
      const bytes = await fetchBytes(name);
      if (await verify(pack.manifest, name, bytes)) pack.verified.push(name);
      return new Uint8Array(bytes);
    };
    const make = async () => {
      if (!(globalThis.crypto && crypto.subtle)) {
        throw new Error("the text encoder runs only sha256-checked files, which needs a secure context: open the page "
          + "on localhost or https");
      }
      const maxWords = pack.manifest.model.phrase_reader;
      if (files.reader && !(Number.isInteger(maxWords) && maxWords >= 1 && maxWords <= 16)) {
        throw new Error(`the phrase reader's window must be 1..16 words, got ${JSON.stringify(maxWords)}`);
      }
      const tokenizer = checkTokenizer(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(await load(files.tokenizer))));
      const wasm = { executionProviders: ["wasm"] };
      const encoder = await ort.InferenceSession.create(await load(files.model), wasm);
      const reader = files.reader ? await ort.InferenceSession.create(await load(files.reader), wasm) : null;
      return new TextReader(tokenizer, encoder, reader, maxWords);
    };
    textReader = make().catch((err) => {
      textReader = null;  // let a later prompt try again
      throw err;
    });
  }
  return textReader;
}

/** A prompt -> {embedding Float32Array [dim], reading {text, corrected, unknown} or null (a bank prompt),
 * nearest {index, prompt, similarity}}: the bank's row, or what the Python runtime's `lookup(prompt, "encode")`
 * gives (lexicon and typos as `PromptBank.reading`, then the encoder and phrase reader). */
async function embedPrompt(promptText) {
  if (typeof promptText !== "string" || promptText.length > MAX_PROMPT_CHARS) {
    throw new Error(`a prompt is a string of at most ${MAX_PROMPT_CHARS} characters`);
  }
  const key = normalizePrompt(promptText);
  const row = pack.bank.index.get(key);
  if (row !== undefined) {
    return { embedding: bankRow(pack.bank, row), reading: null, nearest: { index: row, prompt: pack.bank.prompts[row], similarity: 1 } };
  }
  if (promptWords(key).length > MAX_PROMPT_WORDS) throw new Error(`a prompt is at most ${MAX_PROMPT_WORDS} words`);
  const reader = await getTextReader();
  const reading = readPrompt(key, knownWords(), pack.bank.lexicon, reader.wholeWords, sameAttribute());
  const words = reading.text.split(" ").filter(Boolean);
  if (words.length > MAX_PROMPT_WORDS) {
    throw new Error(`the prompt reads as ${words.length} words with the pack's lexicon: at most ${MAX_PROMPT_WORDS}`);
  }
  // as PromptBank: the text as read where anything was corrected, else the prompt as typed
  const read = Object.keys(reading.corrected).length ? reading.text : promptText;
  const embedding = await exclusive(() => reader.embed(read, promptWords(normalizePrompt(read))));
  return { embedding, reading, nearest: nearestRow(embedding) };
}

/** The words of the bank's first VOCABULARY_PROMPTS distinct prompt keys (as PromptBank.known_words). */
function knownWords() {
  if (!pack.bank.known) pack.bank.known = vocabulary([...pack.bank.index.keys()]);
  return pack.bank.known;
}

/** Whether two bank words say one attribute (text.js alternatives; as PromptBank.reading), built on first use. */
function sameAttribute() {
  if (!pack.bank.same) pack.bank.same = alternatives([...pack.bank.index.keys()], pack.bank.lexicon);
  return pack.bank.same;
}

/** The bank row nearest `v` by cosine similarity: {index, prompt, similarity}. */
function nearestRow(v) {
  const { dim, rows, embeddings, prompts } = pack.bank;
  const nv = Math.max(norm(v), 1e-12);
  let best = { index: -1, prompt: "", similarity: -2 };
  for (let i = 0; i < rows; i++) {
    const r = embeddings.subarray(i * dim, (i + 1) * dim);
    let dot = 0;
    for (let k = 0; k < dim; k++) dot += r[k] * v[k];
    const similarity = dot / (Math.max(norm(r), 1e-12) * nv);
    if (similarity > best.similarity) best = { index: i, prompt: prompts[i], similarity };
  }
  return best;
}

/** What the page says of a typed prompt, as `edge-t2i generate` says it. */
function describeReading({ reading, nearest }) {
  const fixes = Object.entries(reading ? reading.corrected : {}).map(([a, b]) => `${a} \u2192 ${b}`);
  const parts = [];
  if (fixes.length) parts.push(`read as \u201c${reading.text}\u201d (${fixes.join(", ")})`);
  const unknown = reading ? reading.unknown.filter((w) => w.length > 2) : [];  // "at", "on": as generate
  if (unknown.length) {
    parts.push(`no bank prompt uses ${unknown.map((w) => `\u201c${w}\u201d`).join(", ")} (the text encoder reads ` +
               "such words by meaning)");
  }
  parts.push(nearest.similarity >= 0.999 ? `drawn as the bank prompt \u201c${nearest.prompt}\u201d`
    : `drawn as no bank prompt (closest \u201c${nearest.prompt}\u201d at cosine ${nearest.similarity.toFixed(3)})`);
  return parts.join("; ");
}

// ---------------------------------------------------------------------------------------------------
// 7. The page
// ---------------------------------------------------------------------------------------------------

const GRID = 8;  // the seed and the next 7, 4 x 2
const $ = (id) => document.getElementById(id);
// typed: {text, embedding, description} of a typed sentence, which stands for prompt A until A is picked again
const state = { a: 0, b: 1, t: 0, seed: 0n, precision: "int8", embedding: null, seeds: [], typed: null };
const timings = [];  // {images, ms} of the last updates
let renders = 0;

function setStatus(text, kind = "") {
  $("status").textContent = text;
  $("status").className = kind;
}

/** Fill a prompt list with the bank entries whose key contains every word of the search. */
function filterList(select, query, selected) {
  const words = normalizePrompt(query).split(" ").filter(Boolean);
  const { prompts, keys } = pack.bank;
  const options = [];
  keys.forEach((key, i) => {
    if (words.every((w) => key.includes(w))) options.push(new Option(prompts[i], String(i), false, i === selected));
  });
  select.replaceChildren(...options);
  return options.length;
}

function setupPicker(letter) {
  const search = $(`search-${letter}`);
  const select = $(`prompt-${letter}`);
  const count = $(`count-${letter}`);
  const refresh = () => {
    const n = filterList(select, search.value, letter === "a" && state.typed ? -1 : state[letter]);
    count.textContent = `${n} of ${pack.bank.rows}`;
  };
  search.addEventListener("input", refresh);
  search.addEventListener("keydown", (event) => {  // Enter picks the first match
    if (event.key === "Enter" && select.options.length) {
      select.selectedIndex = 0;
      select.dispatchEvent(new Event("change"));
    }
  });
  select.addEventListener("change", () => {
    if (select.value === "") return;
    state[letter] = Number(select.value);
    if (letter === "a") state.typed = null;
    requestRender();
  });
  refresh();
}

function makeGrid() {
  const size = pack.spec.resolution;
  const cells = [];
  for (let i = 0; i < GRID; i++) {
    const figure = document.createElement("figure");
    const canvas = document.createElement("canvas");
    canvas.width = size;
    canvas.height = size;
    figure.append(canvas, document.createElement("figcaption"));
    cells.push(figure);
  }
  $("grid").replaceChildren(...cells);
}

/** Draw uint8 RGB [H * W * 3], or premultiplied RGBA [H * W * 4] (a sprite: the canvas takes straight alpha,
 * and its checkerboard background shows through), into cell i. */
function drawCell(i, rgb, seed) {
  const figure = $("grid").children[i];
  const canvas = figure.querySelector("canvas");
  const image = new ImageData(canvas.width, canvas.height);
  const c = pack.spec.channels;
  for (let p = 0, q = 0; p < rgb.length; p += c, q += 4) {
    const a = c === 4 ? rgb[p + 3] : 255;
    for (let k = 0; k < 3; k++) image.data[q + k] = a ? Math.min(255, Math.round(rgb[p + k] * 255 / a)) : 0;
    image.data[q + 3] = a;
  }
  canvas.classList.toggle("sprite", c === 4);
  canvas.getContext("2d").putImageData(image, 0, 0);
  figure.querySelector("figcaption").textContent = `seed ${seed}`;
}

function showSpeed() {
  const images = timings.reduce((sum, x) => sum + x.images, 0);
  const ms = timings.reduce((sum, x) => sum + x.ms, 0);
  const last = timings[timings.length - 1];
  $("fps").textContent = `${(1000 * images / ms).toFixed(1)} images/s over the last ${timings.length} ` +
    `updates (${last.ms.toFixed(0)} ms for the last ${last.images})`;
}

/** Render the grid for the current state: embedding = slerp(A, B, t), seeds seed .. seed + 7 (mod 2^64). */
async function renderGrid() {
  const { a, b, t, seed, precision } = state;
  // at t = 0, A itself (as `generate(prompt)` draws it); between, the slerp (as PromptBank.blend)
  let embedding = new Float32Array(0);
  if (pack.spec.dim) {
    const first = state.typed ? state.typed.embedding : bankRow(pack.bank, a);
    embedding = t === 0 ? first : slerp(first, bankRow(pack.bank, b), t);
  }
  const seeds = Array.from({ length: GRID }, (_, i) => (seed + BigInt(i)) & MASK64);
  const batch = new Float32Array(GRID * pack.spec.dim);
  for (let i = 0; i < GRID; i++) batch.set(embedding, i * pack.spec.dim);
  const start = performance.now();
  const data = await infer(precision, batch, seeds);
  const ms = performance.now() - start;
  const size = pack.spec.resolution;
  seeds.forEach((s, i) => drawCell(i, toUint8(data, i, size, size, pack.spec.channels), s));
  Object.assign(state, { embedding, seeds });
  timings.push({ images: GRID, ms });
  if (timings.length > 10) timings.shift();
  showSpeed();
  renders += 1;
}

// Live updates without a backlog: changes during a render are coalesced into one more render.
let pending = false;
let rendering = false;
async function requestRender() {
  pending = true;
  if (rendering) return;
  rendering = true;
  try {
    while (pending) {
      pending = false;
      await renderGrid();
    }
    document.body.dataset.state = "ready";
  } catch (err) {
    setStatus(String(err), "error");
    document.body.dataset.state = "error";
    console.error(err);
  } finally {
    rendering = false;
  }
}

function readSeed() {
  try {
    state.seed = toSeed($("seed").value);
    $("seed").setCustomValidity("");
    return true;
  } catch (err) {
    $("seed").setCustomValidity(err.message);
    return false;
  }
}

/** The typed sentence: on Enter, read and encode it (text.js), then draw it as prompt A. */
function setupTyped() {
  const input = $("typed");
  if (!pack.manifest.encoder) {
    input.disabled = true;
    $("reading").textContent = "this pack has no text encoder (converted with --no-encoder): pick prompts below";
    return;
  }
  input.addEventListener("keydown", async (event) => {
    if (event.key !== "Enter") return;
    const text = input.value;
    if (!text.trim()) return;
    $("reading").textContent = pack.text ? "reading..." : "loading the text encoder (about 23 MB)...";
    try {
      const result = await embedPrompt(text);
      pack.text = true;
      const description = describeReading(result);
      state.typed = { text, embedding: result.embedding, description, nearest: result.nearest.prompt,
                      similarity: result.nearest.similarity, corrected: result.reading ? result.reading.corrected : {} };
      $("reading").textContent = description;
      $("reading").className = "";
      $("prompt-a").selectedIndex = -1;  // A is the typed sentence now, not a bank prompt: no filter, no pick
      $("search-a").value = "";
      $("search-a").dispatchEvent(new Event("input"));
      requestRender();
      showBackend();  // the status line lists the text path's files once they are checked
    } catch (err) {
      $("reading").textContent = String(err.message || err);
      $("reading").className = "error";
    }
  });
}

function setupControls() {
  const precision = $("precision");
  const order = ["int8", "fp16", "fp32"].filter((p) => pack.manifest.models[p]);
  precision.replaceChildren(...order.map((p) => new Option(p.toUpperCase(), p)));
  state.precision = order.includes(params.get("precision")) ? params.get("precision") : order[0];
  precision.value = state.precision;
  precision.addEventListener("change", () => {
    state.precision = precision.value;
    setStatus(`loading the ${state.precision} model...`);
    requestRender().then(() => showBackend());
  });
  if (pack.spec.dim === 0) {  // an unconditional pack: no prompts to pick or blend, seeds alone
    for (const el of document.querySelectorAll(".picker, .blend")) el.style.display = "none";
  } else {
    state.b = Math.min(1, pack.bank.rows - 1);
    setupPicker("a");
    setupPicker("b");
    setupTyped();
  }
  const blend = $("blend");
  blend.addEventListener("input", () => {
    state.t = Number(blend.value);
    $("blend-value").textContent = state.t.toFixed(2);
    requestRender();
  });
  $("seed").addEventListener("input", () => readSeed() && requestRender());
  $("random-seed").addEventListener("click", () => {
    $("seed").value = String(crypto.getRandomValues(new Uint32Array(1))[0]);
    if (readSeed()) requestRender();
  });
}

async function showBackend() {
  const session = sessions.get(state.precision);
  if (!session) return;
  const { backend } = await session;
  const checked = pack.verified.length ? `sha256 checked: ${pack.verified.join(", ")}` : "sha256 not checked (not a secure context)";
  setStatus(`${state.precision.toUpperCase()} on ${backend === "webgpu" ? "WebGPU" : "WebAssembly"}${backendNote}; ${checked}`);
}

async function loadPack() {
  ort.env.wasm.wasmPaths = ORT_DIST.href;
  // Threads need SharedArrayBuffer, which needs cross-origin isolation (serve.py sends COOP/COEP headers).
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  const response = await fetch(new URL("manifest.json", PACK));
  if (!response.ok) throw new Error(`manifest.json: HTTP ${response.status}`);
  pack.manifest = await response.json();
  pack.spec = checkManifest(pack.manifest);
  if (pack.spec.dim > 0) {
    const bankBytes = await fetchBytes(pack.manifest.bank);
    if (await verify(pack.manifest, pack.manifest.bank, bankBytes)) pack.verified.push(pack.manifest.bank);
    pack.bank = parseBank(bankBytes);
    if (pack.bank.dim !== pack.spec.dim) throw new Error(`bank dim ${pack.bank.dim} != model cond_dim ${pack.spec.dim}`);
  }
  const { resolution, nz } = pack.spec;
  const what = pack.bank ? `${pack.bank.rows} prompts` : "unconditional: seeds alone";
  $("pack-info").textContent = `${resolution}x${resolution} px, nz ${nz}, ${what}, ` +
    `${ort.env.wasm.numThreads} wasm thread${ort.env.wasm.numThreads > 1 ? "s" : ""}`;
  if (!navigator.gpu) backendNote = " (this browser has no WebGPU)";
  else if (!(await webgpuAvailable())) backendNote = params.get("backend") === "wasm" ? " (asked for)" : " (no WebGPU adapter)";
  makeGrid();
  setupControls();
  setStatus(`loading the ${state.precision} model...`);
  await getSession(state.precision);
  await showBackend();
}

const ready = loadPack();
ready.then(() => requestRender(), (err) => {
  setStatus(`could not load the pack: ${err.message || err}`, "error");
  document.body.dataset.state = "error";
  console.error(err);
});

window.edgeT2I = {
  ready,
  noise,                                   // (seed, nz) -> Float32Array [nz]
  splitmix64: (seed, count) => {           // the first `count` SplitMix64 outputs from `seed`, as hex
    const rng = new SplitMix64(seed);
    return Array.from({ length: count }, () => rng.next().toString(16).padStart(16, "0"));
  },
  portableLn,
  normalizePrompt,
  parseBank,
  slerp,
  toUint8,
  generate,                                // (prompt, seed, precision) -> Promise<Uint8Array [H * W * 3]>
  embedPrompt: async (text) => {           // a prompt -> {embedding (Array), reading, nearest}
    await ready;
    const r = await embedPrompt(text);
    return { ...r, embedding: Array.from(r.embedding) };
  },
  tokens: async (texts) => {               // token ids of texts, as the text encoder gets them
    await ready;
    const reader = await getTextReader();
    return texts.map((t) => reader.tokens(t));
  },
  readPrompt: async (texts) => {           // texts -> how each is read (lexicon, typos), as PromptBank.reading
    const reader = await getTextReader();
    return texts.map((t) => readPrompt(normalizePrompt(t), knownWords(), pack.bank.lexicon, reader.wholeWords,
      sameAttribute()));
  },
  checkLexicon: (raw) => Array.from(checkLexicon(raw)),
  checkTokenizer: (spec) => Boolean(checkTokenizer(spec)),
  currentEmbedding: () => state.embedding, // the blend the grid shows: slerp(A, B, t)
  state: () => {                           // the page's state, JSON-friendly (seeds as decimal strings)
    const { embedding, typed, ...rest } = state;
    const said = typed ? { text: typed.text, description: typed.description, nearest: typed.nearest,
                           similarity: typed.similarity, corrected: typed.corrected } : null;
    return { ...rest, typed: said, seed: String(state.seed), seeds: state.seeds.map(String), renders };
  },
  settled: async () => {                   // resolves with state() once no update is pending or running
    await ready;
    while (rendering || pending) await new Promise((resolve) => setTimeout(resolve, 10));
    return window.edgeT2I.state();
  },
  backend: async (precision = state.precision) => (await getSession(precision)).backend,
  get pack() { return pack; },
};
