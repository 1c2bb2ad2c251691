/**
 * A tiny WGSL preprocessor, so shared pieces live once (shaders/lib/*.wgsl):
 *
 *   #include "lib/fp16.wgsl"     splice another file (once per file)
 *   #if NAME / #if !NAME / #else / #endif
 *                                keep a block when defines[NAME] is truthy (falsy)
 *   #unroll I COUNT / #endunroll repeat a block COUNT times (a number or a define's name),
 *                                with $I = 0, 1, …: the copies index fragment and accumulator
 *                                arrays with constants, which every compiler keeps in
 *                                registers (a loop leaves that to the driver's unroller)
 *   $NAME                        replaced by String(defines[NAME])
 *
 * Every output line remembers its source file and line so compile errors point at
 * the .wgsl the author edits, not at the expanded text.
 */
export type Defines = Record<string, string | number | boolean>;
export type ShaderLoader = (path: string) => string;

export interface Expanded {
  code: string;
  /** origin[i] = "file:line" of output line i + 1. */
  origin: string[];
}

export function expandWgsl(path: string, load: ShaderLoader, defines: Defines = {}): Expanded {
  const out: string[] = [];
  const origin: string[] = [];
  const included = new Set<string>();

  // lines[from, to) of `file` (line numbers from 1 at index 0) under `defs`
  const run = (file: string, lines: string[], from: number, to: number, defs: Defines) => {
    const keep: boolean[] = []; // stack of #if states
    const active = () => keep.every(Boolean);
    for (let i = from; i < to; i++) {
      const where = `${file}:${i + 1}`;
      const t = lines[i].trim();
      let m: RegExpMatchArray | null;
      if ((m = t.match(/^#if\s+(!?)(\w+)$/))) {
        keep.push(Boolean(defs[m[2]]) !== (m[1] === '!'));
      } else if (t === '#else') {
        if (!keep.length) throw new Error(`${where}: #else without #if`);
        keep.push(!keep.pop());
      } else if (t === '#endif') {
        if (!keep.length) throw new Error(`${where}: #endif without #if`);
        keep.pop();
      } else if ((m = t.match(/^#unroll\s+([A-Z_][A-Z0-9_]*)\s+(\w+)$/))) {
        let depth = 1;
        let end = i + 1;
        for (; end < to && depth > 0; end++) {
          const u = lines[end].trim();
          if (u.startsWith('#unroll')) depth++;
          else if (u === '#endunroll') depth--;
        }
        if (depth > 0) throw new Error(`${where}: #unroll without #endunroll`);
        if (active()) {
          const count = /^\d+$/.test(m[2]) ? Number(m[2]) : Number(defs[m[2]]);
          if (!Number.isInteger(count) || count < 0) throw new Error(`${where}: #unroll count ${m[2]} is not a whole number`);
          for (let c = 0; c < count; c++) run(file, lines, i + 1, end - 1, { ...defs, [m[1]]: c });
        }
        i = end - 1;
      } else if (t === '#endunroll') {
        throw new Error(`${where}: #endunroll without #unroll`);
      } else if (!active()) {
        // dropped by #if
      } else if ((m = t.match(/^#include\s+"([^"]+)"$/))) {
        visit(m[1]);
      } else {
        out.push(
          lines[i].replace(/\$([A-Z_][A-Z0-9_]*)/g, (_, name: string) => {
            if (!(name in defs)) throw new Error(`${where}: $${name} is not defined`);
            return String(defs[name]);
          }),
        );
        origin.push(where);
      }
    }
    if (keep.length) throw new Error(`${file}: unterminated #if`);
  };

  const visit = (file: string) => {
    if (included.has(file)) return;
    included.add(file);
    const lines = load(file).split('\n');
    run(file, lines, 0, lines.length, defines);
  };
  visit(path);
  return { code: out.join('\n'), origin };
}
