/**
 * Text tokenizers: the language model's (LLaMA / Vicuna SentencePiece-BPE with byte
 * fallback, as stored in a checkpoint's `tokenizer.json`) and the InstructBLIP Q-Former's
 * (BERT uncased WordPiece, HF's `qformer_tokenizer/`).
 *
 * Both wrap `@huggingface/tokenizers` (the pure-JS port of HF `tokenizers` used by
 * transformers.js). It reproduces what HF's *fast* tokenizer does with the LLaVA-1.5
 * `tokenizer.json`: added tokens that are not `normalized` (`<image>` 32000, `<pad>` 32001,
 * `<s>`, `</s>`, `<unk>`) are split out first and kept as single ids; every remaining piece
 * then goes through the normalizer (`Prepend("▁")` + `Replace(" ", "▁")`) on its own, so
 * the text right after `<image>` starts with `▁` — `USER: <image>\nWhat` gives
 * `… 32000, 29871 ("▁"), 13 ("<0x0A>"), 5618 ("What") …`, exactly as `LlavaProcessor`
 * does. BPE with byte fallback reproduces all llama.cpp SentencePiece test vectors
 * (test/io/tokenizer.test.ts), so nothing had to be rewritten by hand. This is the
 * behaviour of transformers 4.x `LlamaTokenizerFast`, which runs tokenizer.json as stored;
 * a tokenizer rebuilt with a `Metaspace(prepend_scheme="first")` pre-tokenizer (the
 * non-legacy slow→fast conversion) would not put `▁` after `<image>`; pass `--input-ids`
 * to feed such ids exactly.
 *
 * Special tokens (BOS/EOS): when tokenizer_config.json has `add_bos_token` or
 * `add_eos_token` (the files of transformers 4), they say whether `bos_token` / `eos_token`
 * are added, as transformers 4's `LlamaTokenizerFast` does (it rebuilds its post-processor
 * from those flags). When it has neither (the "TokenizersBackend" files transformers 5
 * writes), the `post_processor` of tokenizer.json says it, as transformers 5 does: the
 * special tokens its TemplateProcessing puts before and after `$A`. The two rules differ
 * on a folder whose post-processor and `bos_token` disagree, such as
 * Salesforce/instructblip-vicuna-7b (`bos_token` `</s>`, post-processor `<s>`):
 * transformers 4 prepends `</s>` (2, as the LAVIS original), transformers 5 `<s>` (1,
 * it ignores add_bos_token whenever tokenizer.json exists); phaselens follows the first
 * rule for such a folder and transformers 5 once it has re-saved it.
 *
 * Browser-safe: no file access here; `src/io/load-node.ts` reads the files under Node.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { UserError } from '../errors.ts';

type Json = Record<string, unknown>;

/** A token given in tokenizer_config.json either as a string or as an AddedToken object. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

function asObject(v: unknown, what: string, source: string): Json {
  if (!v || typeof v !== 'object' || Array.isArray(v)) {
    throw new UserError(`${source}: ${what} is not a JSON object`);
  }
  return v as Json;
}

/**
 * Shared part of both tokenizers: vocabulary look-ups and decoding over one
 * `@huggingface/tokenizers` instance.
 */
abstract class HfTokenizerBase {
  protected readonly tk: Tokenizer;
  /** Where the tokenizer came from (a directory or file), used in error messages. */
  readonly source: string;
  /**
   * Number of ids the tokenizer knows: max id + 1 over the model vocabulary and the added
   * tokens (32002 for LLaVA-1.5). The model's embedding may have more rows (32064 for
   * LLaVA-1.5): validate `--input-ids` against `config.vocab_size`, not this.
   */
  readonly vocabSize: number;
  private readonly specialIds: Set<number>;

  protected constructor(tokenizerJson: unknown, tokenizerConfig: unknown, source: string) {
    this.source = source;
    const tj = asObject(tokenizerJson, 'tokenizer.json', source);
    const model = tj.model as Json | undefined;
    if (!model || typeof model !== 'object' || !Array.isArray(tj.added_tokens)) {
      throw new UserError(`${source}: tokenizer.json has no "model" or "added_tokens" section; is it a HF tokenizers file?`);
    }
    const cfg = asObject(tokenizerConfig ?? {}, 'tokenizer_config.json', source);
    // transformers 5 skips clean_up_tokenization_spaces for BPE models (Llama-3's config sets it;
    // it would strip the spaces before punctuation), unless told otherwise
    const bpeCleanup = model.type !== 'BPE' || cfg.clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output === true;
    try {
      this.tk = new Tokenizer(tj, bpeCleanup ? cfg : { ...cfg, clean_up_tokenization_spaces: false });
    } catch (e) {
      throw new UserError(`${source}: cannot build the tokenizer from tokenizer.json: ${(e as Error).message}`);
    }
    let maxId = -1;
    for (const id of this.tk.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    this.specialIds = new Set(
      [...this.tk.get_added_tokens_decoder().entries()].filter(([, t]) => t.special).map(([id]) => id),
    );
  }

  /** The raw vocabulary piece for `id` (with the `▁` word marker, `<0x0A>` byte pieces). */
  idToToken(id: number): string {
    const t = Number.isInteger(id) && id >= 0 ? this.tk.id_to_token(id) : undefined;
    if (t === undefined) {
      throw new UserError(`${this.source}: token id ${id} is not in the vocabulary (0..${this.vocabSize - 1})`);
    }
    return t;
  }

  /** The id of a vocabulary piece or added token (e.g. `<image>`), or a UserError. */
  tokenId(token: string): number {
    const id = this.tk.token_to_id(token);
    if (id === undefined) throw new UserError(`${this.source}: token ${JSON.stringify(token)} is not in the vocabulary`);
    return id;
  }

  /** Like `tokenId`, but `undefined` for an unknown token. */
  tryTokenId(token: string): number | undefined {
    return this.tk.token_to_id(token);
  }

  /** True for added tokens marked `special` (`<s>`, `<image>`, `[CLS]`, …). */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /**
   * Text for `ids`, as HF's fast tokenizer `decode` gives it (byte pieces fused into UTF-8,
   * the leading `▁` of the first word stripped). Ids out of range are a UserError.
   */
  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.tk.id_to_token(id) === undefined) {
        throw new UserError(`${this.source}: cannot decode token id ${id} (vocabulary has ids 0..${this.vocabSize - 1})`);
      }
    }
    const kept = opts.skipSpecialTokens ? ids.filter((id) => !this.specialIds.has(id)) : ids;
    if (kept.length === 0) return '';
    return this.tk.decode([...kept], { skip_special_tokens: false });
  }
}

/**
 * The ids a tokenizers `post_processor` puts before and after a single sequence: those of
 * a TemplateProcessing's `single` template (alone or inside a `Sequence` of processors,
 * where ByteLevel adds none); none for a null post-processor.
 */
function templateSpecials(pp: unknown, source: string): { before: number[]; after: number[] } {
  const none = { before: [], after: [] };
  if (pp === null || pp === undefined) return none;
  const p = asObject(pp, 'tokenizer.json post_processor', source);
  if (p.type === 'Sequence' && Array.isArray(p.processors)) {
    const templates = p.processors.filter((q) => (q as Json)?.type === 'TemplateProcessing');
    return templates.length ? templateSpecials(templates[0], source) : none;
  }
  if (p.type === 'ByteLevel') return none;
  if (p.type !== 'TemplateProcessing' || !Array.isArray(p.single)) {
    throw new UserError(`${source}: tokenizer.json's post_processor "${String(p.type)}" is not supported for the language model (TemplateProcessing or none), and tokenizer_config.json has no add_bos_token to go by`);
  }
  const specials = (p.special_tokens ?? {}) as Record<string, { ids?: unknown }>;
  const out: { before: number[]; after: number[] } = { before: [], after: [] };
  let seen = false;
  for (const piece of p.single as Json[]) {
    if (piece.Sequence) {
      seen = true;
      continue;
    }
    const id = (piece.SpecialToken as Json | undefined)?.id;
    const ids = typeof id === 'string' ? specials[id]?.ids : undefined;
    if (!Array.isArray(ids) || !ids.every((i) => Number.isInteger(i))) {
      throw new UserError(`${source}: tokenizer.json's post_processor names special token ${JSON.stringify(id)} without ids`);
    }
    (seen ? out.after : out.before).push(...(ids as number[]));
  }
  return out;
}

/** Options for `LmTokenizer.encode`. */
export interface EncodeOptions {
  /** Prepend BOS. Default: `add_bos_token` of tokenizer_config.json (true for LLaMA). */
  addBos?: boolean;
  /** Append EOS. Default: `add_eos_token` of tokenizer_config.json (false for LLaMA). */
  addEos?: boolean;
}

/** The language model's tokenizer (LLaMA / Vicuna for LLaVA-1.5 and InstructBLIP). */
export class LmTokenizer extends HfTokenizerBase {
  /** BOS id (`<s>` = 1 for LLaMA), or null when the tokenizer defines none; the post-processor's when it decides (see the header). */
  readonly bosId: number | null;
  /** EOS id (`</s>` = 2 for LLaMA), or null; the post-processor's when it decides. */
  readonly eosId: number | null;
  /** PAD id (`<pad>` = 32001 for LLaVA-1.5), or null. */
  readonly padId: number | null;
  /** UNK id (`<unk>` = 0 for LLaMA), or null. */
  readonly unkId: number | null;
  /** `sep_token` of tokenizer_config.json as written (Chameleon's chat-mode separator), or null. */
  readonly sepToken: string | null;
  /** `add_bos_token` from tokenizer_config.json (default true when a BOS token exists), else whether the post-processor adds one. */
  readonly addBosDefault: boolean;
  /** `add_eos_token` from tokenizer_config.json (default false), else whether the post-processor adds one. */
  readonly addEosDefault: boolean;
  /** The `chat_template` string of tokenizer_config.json, if any (see src/io/chat.ts). */
  readonly chatTemplate: string | null;

  /**
   * @param tokenizerJson parsed `tokenizer.json`
   * @param tokenizerConfig parsed `tokenizer_config.json` (or `{}` when the checkpoint has none)
   * @param source directory or file name, for error messages
   */
  constructor(tokenizerJson: unknown, tokenizerConfig: unknown, source: string) {
    super(tokenizerJson, tokenizerConfig, source);
    const tj = tokenizerJson as Json;
    const cfg = asObject(tokenizerConfig ?? {}, 'tokenizer_config.json', source);
    const idOf = (key: string): number | null => {
      const s = tokenContent(cfg[key]);
      if (s === null) return null;
      const id = this.tk.token_to_id(s);
      if (id === undefined) {
        throw new UserError(`${source}: tokenizer_config.json names ${key} ${JSON.stringify(s)}, which is not in tokenizer.json`);
      }
      return id;
    };
    this.bosId = idOf('bos_token');
    this.eosId = idOf('eos_token');
    this.padId = idOf('pad_token');
    this.unkId = idOf('unk_token');
    this.sepToken = idOf('sep_token') === null ? null : tokenContent(cfg.sep_token);
    const flag = (key: string, dflt: boolean): boolean => {
      const v = cfg[key];
      if (v === undefined || v === null) return dflt;
      if (typeof v !== 'boolean') throw new UserError(`${source}: tokenizer_config.json ${key} must be true or false, got ${JSON.stringify(v)}`);
      return v;
    };
    if (cfg.add_bos_token !== undefined || cfg.add_eos_token !== undefined) {
      this.addBosDefault = flag('add_bos_token', this.bosId !== null);
      this.addEosDefault = flag('add_eos_token', false);
    } else {
      const around = templateSpecials(tj.post_processor, source);
      if (around.before.length > 1 || around.after.length > 1) {
        throw new UserError(`${source}: tokenizer.json's post_processor adds ${around.before.length} tokens before and ${around.after.length} after the text; phaselens handles at most one BOS and one EOS`);
      }
      this.addBosDefault = around.before.length === 1;
      this.addEosDefault = around.after.length === 1;
      // the ids the post-processor adds are this tokenizer's BOS and EOS
      if (this.addBosDefault) this.bosId = around.before[0];
      if (this.addEosDefault) this.eosId = around.after[0];
    }
    this.chatTemplate = typeof cfg.chat_template === 'string' ? cfg.chat_template : null;
  }

  /**
   * Token ids for `text`. Added tokens written in the text (`<image>`, `<pad>`, `<s>`)
   * become their single ids; everything else is SentencePiece-BPE with byte fallback.
   */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids = this.tk.encode(text, { add_special_tokens: false }).ids;
    const addBos = opts.addBos ?? this.addBosDefault;
    const addEos = opts.addEos ?? this.addEosDefault;
    if (addBos) {
      if (this.bosId === null) throw new UserError(`${this.source}: BOS requested but the tokenizer defines no bos_token`);
      ids.unshift(this.bosId);
    }
    if (addEos) {
      if (this.eosId === null) throw new UserError(`${this.source}: EOS requested but the tokenizer defines no eos_token`);
      ids.push(this.eosId);
    }
    return ids;
  }

  /** The raw pieces `encode` produces (without BOS/EOS), e.g. `['▁US', 'ER', ':']`. */
  tokenize(text: string): string[] {
    return this.tk.encode(text, { add_special_tokens: false }).tokens;
  }
}

/**
 * The Q-Former's tokenizer for InstructBLIP: BERT uncased WordPiece, as HF's
 * `BertTokenizerFast` stored under `qformer_tokenizer/` (vocab 30522, plus `[DEC]` 30522
 * in HF's InstructBLIP checkpoints).
 */
export class QformerTokenizer extends HfTokenizerBase {
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number | null;

  constructor(tokenizerJson: unknown, tokenizerConfig: unknown, source: string) {
    super(withBertConfig(tokenizerJson, tokenizerConfig), tokenizerConfig, source);
    const cfg = asObject(tokenizerConfig ?? {}, 'tokenizer_config.json', source);
    const cls = tokenContent(cfg.cls_token) ?? '[CLS]';
    const sep = tokenContent(cfg.sep_token) ?? '[SEP]';
    this.clsId = this.tokenId(cls);
    this.sepId = this.tokenId(sep);
    const pad = tokenContent(cfg.pad_token) ?? '[PAD]';
    this.padId = this.tryTokenId(pad) ?? null;
  }

  /**
   * Build from a BERT `vocab.txt` (one token a line, id = line number) when a checkpoint
   * ships no tokenizer.json; mirrors what `BertTokenizerFast` converts it to.
   */
  static fromVocabTxt(vocabTxt: string, tokenizerConfig: unknown, source: string): QformerTokenizer {
    const cfg = asObject(tokenizerConfig ?? {}, 'tokenizer_config.json', source);
    const lines = vocabTxt.split('\n');
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    const vocab: Record<string, number> = {};
    lines.forEach((tok, i) => {
      const t = tok.replace(/\r$/, '');
      if (!(t in vocab)) vocab[t] = i;
    });
    const special = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
    for (const s of ['[UNK]', '[CLS]', '[SEP]']) {
      if (!(s in vocab)) throw new UserError(`${source}: vocab.txt has no ${s} token; is it a BERT vocabulary?`);
    }
    const addedTokens = special
      .filter((s) => s in vocab)
      .map((s) => ({ id: vocab[s], content: s, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
    // Tokens HF added on top of vocab.txt (InstructBLIP's `[DEC]`), from added_tokens_decoder.
    const extra = (cfg.added_tokens_decoder ?? {}) as Record<string, unknown>;
    for (const [idStr, t] of Object.entries(extra)) {
      const content = tokenContent(t);
      const id = Number(idStr);
      if (content !== null && !(content in vocab) && Number.isInteger(id)) {
        addedTokens.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
      }
    }
    const lower = cfg.do_lower_case === undefined ? true : Boolean(cfg.do_lower_case);
    const tokenizerJson = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: addedTokens,
      normalizer: {
        type: 'BertNormalizer',
        clean_text: true,
        handle_chinese_chars: cfg.tokenize_chinese_chars === undefined ? true : Boolean(cfg.tokenize_chinese_chars),
        strip_accents: cfg.strip_accents ?? null,
        lowercase: lower,
      },
      pre_tokenizer: { type: 'BertPreTokenizer' },
      post_processor: {
        type: 'TemplateProcessing',
        single: [
          { SpecialToken: { id: '[CLS]', type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: '[SEP]', type_id: 0 } },
        ],
        pair: [],
        special_tokens: {
          '[CLS]': { id: '[CLS]', ids: [vocab['[CLS]']], tokens: ['[CLS]'] },
          '[SEP]': { id: '[SEP]', ids: [vocab['[SEP]']], tokens: ['[SEP]'] },
        },
      },
      decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
      model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
    };
    return new QformerTokenizer(tokenizerJson, cfg, source);
  }

  /** `[CLS] … [SEP]` ids for the instruction text, as HF's `BertTokenizerFast(text)` gives. */
  encodeQformer(text: string): number[] {
    const ids = this.tk.encode(text, { add_special_tokens: false }).ids;
    return [this.clsId, ...ids, this.sepId];
  }
}

/**
 * HF's `BertTokenizerFast.__init__` rebuilds the normalizer when tokenizer_config.json's
 * `do_lower_case` / `strip_accents` / `tokenize_chinese_chars` disagree with tokenizer.json;
 * do the same on a copy.
 */
function withBertConfig(tokenizerJson: unknown, tokenizerConfig: unknown): unknown {
  const tj = tokenizerJson as Json | null;
  const cfg = (tokenizerConfig ?? {}) as Json;
  const norm = tj && typeof tj === 'object' ? (tj.normalizer as Json | null | undefined) : null;
  if (!norm || norm.type !== 'BertNormalizer') return tokenizerJson;
  const patched: Json = { ...norm };
  if (typeof cfg.do_lower_case === 'boolean') patched.lowercase = cfg.do_lower_case;
  if (cfg.strip_accents === null || typeof cfg.strip_accents === 'boolean') patched.strip_accents = cfg.strip_accents;
  if (typeof cfg.tokenize_chinese_chars === 'boolean') patched.handle_chinese_chars = cfg.tokenize_chinese_chars;
  return { ...tj, normalizer: patched };
}

/**
 * Parse `--input-ids` ("1, 3148,1001") into ids, each checked to be an integer in
 * `[0, vocabSize)`. Pass the model's embedding size (`config.vocab_size`) as `vocabSize`.
 * `what` names the source of the string in error messages.
 */
export function parseInputIds(s: string, vocabSize: number, what = '--input-ids'): number[] {
  const parts = s.split(',').map((p) => p.trim());
  if (parts.length === 1 && parts[0] === '') throw new UserError(`${what}: no token ids given (expected e.g. "1,3148,1001")`);
  return parts.map((p, i) => {
    if (!/^\d+$/.test(p)) {
      throw new UserError(`${what}: item ${i + 1} ${JSON.stringify(p)} is not a non-negative integer token id (expected e.g. "1,3148,1001")`);
    }
    const id = Number(p);
    if (id >= vocabSize) throw new UserError(`${what}: token id ${id} (item ${i + 1}) is out of range; the vocabulary has ids 0..${vocabSize - 1}`);
    return id;
  });
}
