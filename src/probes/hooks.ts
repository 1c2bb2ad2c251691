/**
 * Hook points: named places in a model's forward where probes and interventions attach.
 * A hook point with no subscriber is an identity and costs nothing. A subscriber sees the
 * tensor (on the GPU) and may record its own dispatches on it (a metric reduction), or
 * return a replacement tensor (an intervention). Probes never edit model code.
 *
 * Subscriptions are global state on the model: `withHooks` removes them when the run ends,
 * as TransformerLens' run_with_hooks does by default.
 */
import type { Tensor } from '../gpu/tensor.ts';

export type HookFn = (t: Tensor, name: string) => Tensor | void;
export type NameFilter = string | readonly string[] | ((name: string) => boolean);

interface Subscription {
  match: (name: string) => boolean;
  fn: HookFn;
}

export class HookPoints {
  private subs: Subscription[] = [];
  /** Every hook point a forward passed through, with its shape comment (for `list`). */
  readonly declared = new Map<string, string>();

  /** Declares a hook point and its layout, e.g. declare('lm.blocks.0.resid_post', '[pos, d_model]'). */
  declare(name: string, layout: string): void {
    this.declared.set(name, layout);
  }

  add(names: NameFilter, fn: HookFn): () => void {
    const s: Subscription = { match: matcher(names), fn };
    this.subs.push(s);
    return () => {
      this.subs = this.subs.filter((x) => x !== s);
    };
  }

  clear(): void {
    this.subs = [];
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
  async withHooks<T>(hooks: [NameFilter, HookFn][], body: () => Promise<T>): Promise<T> {
    const undo = hooks.map(([n, f]) => this.add(n, f));
    try {
      return await body();
    } finally {
      undo.forEach((u) => u());
    }
  }
}

function matcher(names: NameFilter): (name: string) => boolean {
  if (typeof names === 'function') return names;
  if (typeof names === 'string') return (n) => n === names;
  const set = new Set(names);
  return (n) => set.has(n);
}
