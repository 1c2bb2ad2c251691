import { describe, expect, it } from 'vitest';
import { PAPER_PHASES, segmentPhases, smooth } from '../../src/analysis/phases.ts';
import { UserError } from '../../src/errors.ts';
import { captionWords, logitLensRecall, pieceWords } from '../../src/analysis/recall.ts';

describe('phase segmentation', () => {
  it('finds the paper\'s four phases on a rise-fall-rise-fall curve', () => {
    const y = [0.1, 0.3, 0.5, 0.4, 0.2, 0.15, 0.3, 0.6, 0.7, 0.4];
    const p = segmentPhases(y);
    expect(p.boundaries).toEqual([2, 5, 8]);
    expect(p.labels).toEqual(PAPER_PHASES);
  });

  it('labels other shapes by direction and treats flat steps as part of the run', () => {
    const p = segmentPhases([1, 1, 2, 3, 3, 2]);
    expect(p.directions).toEqual(['rise', 'fall']);
    expect(p.boundaries).toEqual([4]);
    expect(p.labels).toEqual(['1 rise', '2 fall']);
  });

  it('smoothing removes a one-layer wiggle', () => {
    const y = [0, 1, 2, 3, 2.9, 4, 5, 4, 3, 2];
    expect(segmentPhases(y).boundaries).toEqual([3, 4, 6]);
    expect(segmentPhases(y, 3).boundaries).toEqual([6]);
    expect(smooth([1, 2, 3], 3)).toEqual([1.5, 2, 2.5]);
  });

  it('refuses an even window: a centred average has none, and the window used must be the one recorded', () => {
    for (const w of [2, 4, 0, 1.5]) {
      expect(() => smooth([1, 2, 3, 4, 5], w)).toThrow(/odd whole number/);
      expect(() => segmentPhases([1, 2, 3, 2, 1], w)).toThrow(UserError);
    }
    // what is recorded is what was used: w = 5 averages 5 layers in the middle
    expect(smooth([0, 0, 5, 0, 0, 0, 0], 5)[2]).toBe(1);
    expect(segmentPhases([1, 2, 3, 2, 1], 5).window).toBe(5);
  });
});

describe('LogitLens recall', () => {
  it('normalises pieces and captions', () => {
    expect(pieceWords('▁Cats')).toEqual(['cats']);
    expect(pieceWords('<0x0A>')).toEqual([]);
    expect(pieceWords('▁on')).toEqual([]);
    expect([...captionWords(['Two cats on a couch.', 'A cat sleeping on the sofa'])].sort()).toEqual(['cat', 'cats', 'couch', 'sleeping', 'sofa']);
  });

  it('computes |caption ∩ decoded| / |caption| per layer', () => {
    const vocab = ['▁cat', '▁dog', '▁couch', 'ing', '▁the'];
    const top = [
      [[0, 1], [4, 3]], // cat, dog, the, ing → {cat, dog, ing}
      [[2, 0], [1, 1]], // couch, cat, dog
    ];
    const r = logitLensRecall(top, (i) => vocab[i], ['a cat on the couch']); // {cat, couch}
    expect(r).toEqual([0.5, 1]);
    expect(logitLensRecall(top, (i) => vocab[i], ['on the'])).toEqual([null, null]);
  });
});
