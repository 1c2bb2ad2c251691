/**
 * A tiny WGSL preprocessor, so shared pieces live once (shaders/lib/*.wgsl):
 *
 *   #include "lib/fp16.wgsl"     splice another file (once per file)
 *   #if NAME / #else / #endif    keep a block when defines[NAME] is truthy
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

  const visit = (file: string) => {
    if (included.has(file)) return;
    included.add(file);
    const lines = load(file).split('\n');
    const keep: boolean[] = []; // stack of #if states
    const active = () => keep.every(Boolean);
    lines.forEach((line, i) => {
      const where = `${file}:${i + 1}`;
      const t = line.trim();
      let m: RegExpMatchArray | null;
      if ((m = t.match(/^#if\s+(!?)(\w+)$/))) {
        keep.push(Boolean(defines[m[2]]) !== (m[1] === '!'));
      } else if (t === '#else') {
        if (!keep.length) throw new Error(`${where}: #else without #if`);
        keep.push(!keep.pop());
      } else if (t === '#endif') {
        if (!keep.length) throw new Error(`${where}: #endif without #if`);
        keep.pop();
      } else if (!active()) {
        // dropped by #if
      } else if ((m = t.match(/^#include\s+"([^"]+)"$/))) {
        visit(m[1]);
      } else {
        out.push(
          line.replace(/\$([A-Z_][A-Z0-9_]*)/g, (_, name: string) => {
            if (!(name in defines)) throw new Error(`${where}: $${name} is not defined`);
            return String(defines[name]);
          }),
        );
        origin.push(where);
      }
    });
    if (keep.length) throw new Error(`${file}: unterminated #if`);
  };
  visit(path);
  return { code: out.join('\n'), origin };
}
