/**
 * Hook points: named places in a model's forward where probes and interventions attach.
 * One registry per root model (a loaded VLM): its towers — `vision.*`, `qformer.*`,
 * `projector.*`, `lm.*` — declare their points in it, with a shape comment, when they
 * are built. A hook point with no subscriber is an identity and costs nothing.
 *
 * A subscriber sees the tensor (on the GPU) and may record its own dispatches on it (a
 * metric reduction, a copy), or return a replacement (an intervention).
 *
 * Ownership: the model releases whatever `run` returns, exactly as it would have released
 * its own tensor. A subscriber that returns a replacement takes over the tensor it was
 * given: it must release it (or keep it and release it later). So a replaced tensor is
 * released exactly once, by whoever last held it (test/hooks/hooks.test.ts checks this).
 *
 * Subscriptions are global state on the model: `withHooks` removes them when the run
 * ends, as TransformerLens' run_with_hooks does by default. Subscribing to a name nobody
 * declared is an error that lists the nearest declared names (a typo would otherwise
 * subscribe to nothing and leave a metric silently empty).
 */
import type { Tensor } from '../gpu/tensor.ts';
import { UserError } from '../errors.ts';

export type HookFn = (t: Tensor, name: string) => Tensor | void;
export type NameFilter = string | readonly string[] | ((name: string) => boolean);

interface Subscription {
  match: (name: string) => boolean;
  fn: HookFn;
}

export class HookPoints {
  private subs: Subscription[] = [];
  /** Every declared hook point with its shape comment, in declaration order. */
  readonly declared = new Map<string, string>();

  /** Declares a hook point and its layout, e.g. declare('lm.blocks.0.resid_post', '[pos, d_model]'). */
  declare(name: string, layout: string): void {
    this.declared.set(name, layout);
  }

  /** Subscribes `fn`; returns the function that removes it. Unknown names are an error. */
  add(names: NameFilter, fn: HookFn): () => void {
    const s: Subscription = { match: this.checked(names), fn };
    this.subs.push(s);
    return () => {
      this.subs = this.subs.filter((x) => x !== s);
    };
  }

  clear(): void {
    this.subs = [];
  }

  /** True when some subscriber listens to `name` (lets a model skip work nobody reads). */
  listened(name: string): boolean {
    return this.subs.some((s) => s.match(name));
  }

  /** Called by model code at a hook point; returns the (possibly replaced) tensor. */
  run(name: string, t: Tensor): Tensor {
    for (const s of this.subs) {
      if (!s.match(name)) continue;
      const r = s.fn(t, name);
      if (r) t = r;
    }
    return t;
  }

  /** Runs `body` with the given subscriptions and removes them afterwards, even on error. */
  async withHooks<T>(hooks: readonly [NameFilter, HookFn][], body: () => Promise<T>): Promise<T> {
    const undo: (() => void)[] = [];
    try {
      for (const [n, f] of hooks) undo.push(this.add(n, f));
      return await body();
    } finally {
      undo.forEach((u) => u());
    }
  }

  private checked(names: NameFilter): (name: string) => boolean {
    if (typeof names === 'function') {
      if (![...this.declared.keys()].some(names)) throw new UserError('a hook filter matches no declared hook point of this model');
      return names;
    }
    const list = typeof names === 'string' ? [names] : names;
    for (const n of list) if (!this.declared.has(n)) throw new UserError(`no hook point "${n}" in this model; nearest: ${this.nearest(n).join(', ')}`);
    const set = new Set(list);
    return (n) => set.has(n);
  }

  /** The declared names closest to `name` by edit distance (for error messages). */
  nearest(name: string, count = 5): string[] {
    return [...this.declared.keys()]
      .map((d) => ({ d, cost: editDistance(name, d) }))
      .sort((a, b) => a.cost - b.cost || (a.d < b.d ? -1 : 1))
      .slice(0, count)
      .map((x) => x.d);
  }
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}
