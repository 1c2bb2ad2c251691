/**
 * LogitLens recall against captions (the paper's Fig. 5): at layer l, the words decoded
 * from the top-k tokens of every visual token, compared with the words of the image's
 * captions: recall(l) = |caption words ∩ decoded words| / |caption words|.
 *
 * Word normalisation (both sides, configurable):
 *   - a token piece loses SentencePiece's word marker `▁` (and byte pieces like <0x0A> are dropped);
 *   - lower case; only letters a–z kept (digits and punctuation split words);
 *   - words shorter than `minLength` (default 3) and stop words (a small English list) dropped;
 *   - caption words: the union over all captions of the image.
 */
export interface WordOptions {
  minLength: number;
  stopWords: ReadonlySet<string>;
  lowercase: boolean;
}

export const STOP_WORDS: ReadonlySet<string> = new Set(
  ('a an the and or but of on in at to for with by from up down over under into onto off out is are was were be been being has have had ' +
    'do does did this that these those there here it its it\'s as than then so such very can will just not no nor too some any each ' +
    'other another while who whom which what when where why how all both few more most own same only one two three his her their our your my ' +
    'he she they we you i me him them us who\'s near next front back top side').split(/\s+/),
);

export const DEFAULT_WORDS: WordOptions = { minLength: 3, stopWords: STOP_WORDS, lowercase: true };

export function words(text: string, o: WordOptions = DEFAULT_WORDS): string[] {
  const t = o.lowercase ? text.toLowerCase() : text;
  return t
    .split(/[^A-Za-z]+/)
    .filter((w) => w.length >= o.minLength && !o.stopWords.has(w.toLowerCase()));
}

/** Words of one vocabulary piece ('▁cat' → ['cat']; '<0x0A>' and special tokens → []). */
export function pieceWords(piece: string, o: WordOptions = DEFAULT_WORDS): string[] {
  if (/^<.*>$/.test(piece)) return [];
  return words(piece.replace(/▁/g, ' '), o);
}

export function captionWords(captions: readonly string[], o: WordOptions = DEFAULT_WORDS): Set<string> {
  return new Set(captions.flatMap((c) => words(c, o)));
}

/**
 * recall per layer: topIds[l][token][k] are vocabulary ids; idToPiece maps them to pieces.
 * Returns null for every layer when the captions have no words left after normalisation.
 */
export function logitLensRecall(
  topIds: readonly (readonly (readonly number[])[])[],
  idToPiece: (id: number) => string,
  captions: readonly string[],
  o: WordOptions = DEFAULT_WORDS,
): (number | null)[] {
  const target = captionWords(captions, o);
  return topIds.map((layer) => {
    if (!target.size) return null;
    const decoded = new Set(layer.flatMap((tok) => tok.flatMap((id) => pieceWords(idToPiece(id), o))));
    let hit = 0;
    for (const w of target) if (decoded.has(w)) hit++;
    return hit / target.size;
  });
}
