// Prompts outside the bank, in the browser: what the Python runtime does for them (docs/pack-spec.md,
// "Prompts not in the bank"), in the same order:
//
//   1. words      the prompt's key (app.js normalizePrompt) split as edge_t2i/data/prompts.py prompt_words
//   2. reading    the bank's lexicon ("crimson" -> "red") and one-letter typos ("yelloow" -> "yellow"), as
//                 edge_t2i/data/spelling.py `read`, against the words of the bank's prompts
//   3. tokens     tokenizer.json through Tokenizers.js (npm @huggingface/tokenizers, the Hugging Face port of the
//                 Rust `tokenizers` the Python runtime uses; tests/web checks them token for token)
//   4. encoder    encoder.int8.onnx (all-MiniLM-L6-v2) on every window of 1..W words, mean-pooled over the
//                 attention mask and L2-normalised (edge_t2i/runtime/encoder.py)
//   5. reader     reader.onnx: the windows' vectors -> the embedding the generator gets (runtime/reader.py)

import { Tokenizer } from "./tokenizers/tokenizers.min.mjs";  // serve.py: node_modules/@huggingface/tokenizers/dist

/* global ort */

export const LEXICON_MIN_LETTERS = 5;  // spelling.py: the shortest word corrected against the lexicon
export const MIN_LETTERS = 4;        // edge_t2i/data/spelling.py: the shortest typed word corrected (' and - not counted)
export const MAX_LETTERS = 24;
export const MAX_LEXICON_WORDS = 3;
export const MAX_TOKENS = 128;       // the encoder's truncation (edge_t2i/runtime/encoder.py MAX_TOKENS)
export const VOCABULARY_PROMPTS = 50000;  // the bank prompts whose words typos are corrected against
const LETTERS = "abcdefghijklmnopqrstuvwxyz";

// ---------------------------------------------------------------------------------------------------
// 1-2. Words and how they are read
// ---------------------------------------------------------------------------------------------------

/** The words of a prompt's key: characters other than a-z, 0-9, ' and - split words. */
export function promptWords(key) {
  return key.replace(/[^a-z0-9'-]+/g, " ").split(" ").filter(Boolean);
}

/** The words of the first `limit` prompt keys: what typos are corrected against. */
export function vocabulary(keys, limit = VOCABULARY_PROMPTS) {
  const words = new Set();
  for (const key of keys.slice(0, limit)) for (const w of promptWords(key)) words.add(w);
  return words;
}

/** Which bank words say one attribute (spelling.py alternatives): for each one-word meaning of `lexicon` (Map), the
 * indices of the first `limit` bank keys that use it; two such words say one attribute when no key uses both
 * ("pink", "red"; not "small", "red"). Returns same(a, b). */
export function alternatives(keys, lexicon, limit = VOCABULARY_PROMPTS) {
  const meanings = new Set([...lexicon.values()].filter((m) => !m.includes(" ")));
  const said = new Map();
  keys.slice(0, limit).forEach((key, i) => {
    for (const w of new Set(promptWords(key))) {
      if (!meanings.has(w)) continue;
      if (!said.has(w)) said.set(w, new Set());
      said.get(w).add(i);
    }
  });
  return (a, b) => {
    if (a === b) return true;
    if (!said.has(a) || !said.has(b)) return false;
    const [small, large] = said.get(a).size <= said.get(b).size ? [said.get(a), said.get(b)] : [said.get(b), said.get(a)];
    for (const i of small) if (large.has(i)) return false;
    return true;
  };
}

/** Every string one Damerau edit away from `word` (delete, swap neighbours, replace, insert a-z). */
export function oneEdit(word) {
  const out = new Set();
  for (let i = 0; i <= word.length; i++) {
    const a = word.slice(0, i);
    const b = word.slice(i);
    if (b) out.add(a + b.slice(1));
    if (b.length > 1) out.add(a + b[1] + b[0] + b.slice(2));
    for (const c of LETTERS) {
      if (b) out.add(a + c + b.slice(1));
      out.add(a + c + b);
    }
  }
  out.delete(word);
  return out;
}

/** How a prompt is read before it is encoded: {text, corrected {typed: used}, unknown [words]}. `key`: the
 * prompt's key; `known`: Set of the bank's words; `lexicon`: Map phrase -> bank words (from the bank file);
 * `wholeWords`: Set of the tokenizer's whole-word tokens (TextReader.wholeWords) or null; `same`: the bank's
 * `alternatives` or null (a phrase followed by a bank word of its meaning's attribute reads as that word). */
export function readPrompt(key, known, lexicon, wholeWords = null, same = null) {
  const words = promptWords(key);
  const out = [];
  const corrected = {};
  const unknown = [];
  for (let i = 0; i < words.length;) {
    let matched = false;
    for (let n = Math.min(MAX_LEXICON_WORDS, words.length - i); n >= 1 && !matched; n--) {
      const typed = words.slice(i, i + n).join(" ");
      if (lexicon.has(typed) && !(n === 1 && known.has(typed))) {
        const said = i + n < words.length ? words[i + n] : "";
        if (same !== null && known.has(said) && same(lexicon.get(typed), said)) {  // "paprika red": red
          corrected[`${typed} ${said}`] = said;
          out.push(said);
          i += n + 1;
        } else {
          corrected[typed] = lexicon.get(typed);
          out.push(lexicon.get(typed));
          i += n;
        }
        matched = true;
      }
    }
    if (matched) continue;
    out.push(readWord(words[i], known, corrected, unknown, wholeWords, lexicon));
    i += 1;
  }
  return { text: out.join(" "), corrected, unknown: [...new Set(unknown)] };
}

/** One word: itself if the bank uses it, else its one correction against the bank's words, else (no bank word
 * one edit away, at least 5 letters, no whole word of the tokenizer: "draw" is one edit from the colour "drab")
 * the one meaning of the lexicon's one-word entries one edit away ("humongus" -> "large"), else itself, unknown. */
function readWord(word, known, corrected, unknown, wholeWords, lexicon) {
  if (known.has(word) || known.size === 0) return word;
  const letters = word.replace(/['-]/g, "");
  // a 3-letter word the tokenizer holds as a whole word ("pin", "let") is a word, not a typo ("str", "pnk")
  const short = letters.length === MIN_LETTERS - 1 && wholeWords !== null && !wholeWords.has(word);
  const fits = ((letters.length >= MIN_LETTERS && letters.length <= MAX_LETTERS) || short) && /^[a-z]+$/.test(letters);
  const edits = fits ? [...oneEdit(word)] : [];
  const candidates = edits.filter((w) => known.has(w));
  if (candidates.length === 1) {
    corrected[word] = candidates[0];
    return corrected[word];
  }
  if (candidates.length === 0 && lexicon.size > 0 && wholeWords !== null && !wholeWords.has(word)
      && letters.length >= LEXICON_MIN_LETTERS) {
    // the one-word entries one edit away must all mean the same ("eensy": "teensy" and "weensy", small)
    const meanings = [...new Set(edits.filter((w) => lexicon.has(w) && !w.includes(" ")).map((w) => lexicon.get(w)))];
    if (meanings.length === 1) {
      corrected[word] = meanings[0];
      return corrected[word];
    }
  }
  unknown.push(word);
  return word;
}

/** Every run of 1..maxWords consecutive words, shortest first; [""] for no words (prompts.py phrase_windows). */
export function phraseWindows(words, maxWords) {
  const out = [];
  for (let n = 1; n <= maxWords; n++) {
    for (let i = 0; i + n <= words.length; i++) out.push(words.slice(i, i + n).join(" "));
  }
  return out.length ? out : [""];
}

// ---------------------------------------------------------------------------------------------------
// 3-5. Tokens, encoder, reader
// ---------------------------------------------------------------------------------------------------

/** `spec` (a parsed tokenizer.json) if it holds no regular expression, as edge_t2i/runtime/encoder.py
 * check_tokenizer: a crafted pattern can backtrack for minutes on a typed word, on the page's main thread. */
export function checkTokenizer(spec) {
  const todo = [spec];
  while (todo.length) {
    const item = todo.pop();
    if (item && typeof item === "object") {
      if (!Array.isArray(item) && Object.prototype.hasOwnProperty.call(item, "Regex")) {
        throw new Error("the pack's tokenizer uses a regular expression: the page takes WordPiece-style tokenizers "
          + "without patterns");
      }
      for (const value of Object.values(item)) todo.push(value);
    }
  }
  return spec;
}

/** The pack's text path: `encode(texts)` -> Float32Array [n * dim], `embed(text)` -> Float32Array [dim]. */
export class TextReader {
  /** tokenizerJson: the parsed tokenizer.json; encoder, reader: ort.InferenceSession (reader may be null: the
   * prompt's own sentence embedding is then the generator's input); maxWords: model.phrase_reader. */
  constructor(tokenizerJson, encoder, reader, maxWords) {
    this.tokenizer = new Tokenizer(tokenizerJson, {});
    const vocab = (tokenizerJson.model && tokenizerJson.model.vocab) || {};
    this.wholeWords = new Set(Object.keys(vocab).filter((t) => !t.startsWith("##")));
    this.encoder = encoder;
    this.reader = reader;
    this.maxWords = maxWords;
  }

  /** Token ids of one text as the Python runtime's tokenizer gives them: [CLS] ... [SEP], at most MAX_TOKENS. */
  tokens(text) {
    const ids = this.tokenizer.encode(text).ids;
    return ids.length > MAX_TOKENS ? [...ids.slice(0, MAX_TOKENS - 1), ids[ids.length - 1]] : ids;
  }

  /** L2-normalised mean-pooled encoder vectors of `texts`, one batch padded to the longest (as Python's). */
  async encode(texts) {
    const rows = texts.map((t) => this.tokens(t));
    const width = Math.max(...rows.map((r) => r.length));
    const ids = new BigInt64Array(rows.length * width);
    const mask = new BigInt64Array(rows.length * width);
    rows.forEach((r, i) => r.forEach((id, j) => {
      ids[i * width + j] = BigInt(id);
      mask[i * width + j] = 1n;
    }));
    const dims = [rows.length, width];
    const feeds = { input_ids: new ort.Tensor("int64", ids, dims), attention_mask: new ort.Tensor("int64", mask, dims) };
    if (this.encoder.inputNames.includes("token_type_ids")) {
      feeds.token_type_ids = new ort.Tensor("int64", new BigInt64Array(rows.length * width), dims);
    }
    const out = await this.encoder.run(feeds);
    const hidden = out[this.encoder.outputNames[0]];
    const [n, t, dim] = hidden.dims;
    if (n !== rows.length || t !== width) throw new Error(`the text encoder returned ${hidden.dims}`);
    return pool(hidden.data, rows.map((r) => r.length), t, dim);
  }

  /** The generator's embedding of one read text (Float32Array [dim]): its windows (of `words`, the text's words)
   * through the reader; without a reader, the text's own sentence embedding. */
  async embed(text, words) {
    if (!this.reader) return this.encode([text]);
    // as runtime/reader.py: each distinct window encoded once, in sorted order (one padded batch, so the same
    // batch as Python's), then one row per window of the prompt, repeats included, shortest first
    const windows = phraseWindows(words, this.maxWords);
    const unique = [...new Set(windows)].sort();
    const vectors = await this.encode(unique);
    const dim = vectors.length / unique.length;
    const index = new Map(unique.map((w, i) => [w, i]));
    const rows = new Float32Array(windows.length * dim);
    windows.forEach((w, i) => rows.set(vectors.subarray(index.get(w) * dim, (index.get(w) + 1) * dim), i * dim));
    const out = await this.reader.run({ windows: new ort.Tensor("float32", rows, [windows.length, dim]) });
    const embedding = out.embedding;
    if (!embedding || embedding.dims.join() !== `1,${dim}`) throw new Error("the phrase reader returned no [1, dim]");
    return Float32Array.from(embedding.data);
  }
}

/** Mean over the first `lengths[i]` of `t` token vectors of row i, then divided by its norm (float32 out). */
function pool(data, lengths, t, dim) {
  const out = new Float32Array(lengths.length * dim);
  lengths.forEach((len, i) => {
    const sum = new Float64Array(dim);
    for (let j = 0; j < len; j++) {
      const base = (i * t + j) * dim;
      for (let k = 0; k < dim; k++) sum[k] += data[base + k];
    }
    let norm = 0;
    for (let k = 0; k < dim; k++) {
      sum[k] /= len;
      norm += sum[k] * sum[k];
    }
    norm = Math.max(Math.sqrt(norm), 1e-12);
    for (let k = 0; k < dim; k++) out[i * dim + k] = sum[k] / norm;
  });
  return out;
}
