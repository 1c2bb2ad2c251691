/**
 * VQA exact-match scoring: an answer is correct when, after normalisation, it equals one of
 * the accepted answers. Normalisation: lower case, punctuation removed (every character that
 * is not a letter, digit or space), whitespace collapsed and trimmed.
 */
export function normalizeAnswer(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s]/gu, '')
    .replace(/\s+/g, ' ')
    .trim();
}

export function vqaCorrect(answer: string, accepted: readonly string[]): boolean {
  const a = normalizeAnswer(answer);
  return accepted.some((x) => normalizeAnswer(x) === a);
}
