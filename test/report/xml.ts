/**
 * A small XML well-formedness check for the SVG tests (no DOM in Node): balanced tags,
 * quoted attributes without raw '<', unique attribute names, text without raw '<' and with
 * only known entities. Returns the element names in document order; throws on the first error.
 */
export function checkXml(doc: string): string[] {
  const names: string[] = [];
  const stack: string[] = [];
  const entity = /&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/y;
  let i = 0;
  const text = (a: number, b: number) => {
    for (let k = a; k < b; k++) {
      if (doc[k] === '&') {
        entity.lastIndex = k;
        if (!entity.test(doc)) throw new Error(`bad entity at ${k}: ${doc.slice(k, k + 12)}`);
      }
    }
  };
  let roots = 0;
  while (i < doc.length) {
    const lt = doc.indexOf('<', i);
    if (lt < 0) {
      text(i, doc.length);
      if (doc.slice(i).trim() && stack.length === 0) throw new Error('text after the root element');
      break;
    }
    text(i, lt);
    if (doc.startsWith('<?', lt)) {
      const e = doc.indexOf('?>', lt);
      if (e < 0) throw new Error('unterminated <?');
      i = e + 2;
      continue;
    }
    if (doc.startsWith('<!--', lt)) {
      const e = doc.indexOf('-->', lt);
      if (e < 0) throw new Error('unterminated comment');
      i = e + 3;
      continue;
    }
    const gt = doc.indexOf('>', lt);
    if (gt < 0) throw new Error(`unterminated tag at ${lt}`);
    const tag = doc.slice(lt + 1, gt);
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}> at ${lt}`);
    } else {
      const self = tag.endsWith('/');
      const body = self ? tag.slice(0, -1) : tag;
      const m = /^([A-Za-z_][\w.:-]*)/.exec(body);
      if (!m) throw new Error(`bad tag name at ${lt}: ${tag.slice(0, 20)}`);
      const name = m[1];
      let rest = body.slice(name.length);
      const seen = new Set<string>();
      const attr = /^\s+([A-Za-z_][\w.:-]*)\s*=\s*"([^"<]*)"/;
      for (;;) {
        const a = attr.exec(rest);
        if (!a) break;
        if (seen.has(a[1])) throw new Error(`duplicate attribute ${a[1]} in <${name}>`);
        seen.add(a[1]);
        if (/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(a[2])) throw new Error(`bad entity in ${name}@${a[1]}`);
        rest = rest.slice(a[0].length);
      }
      if (rest.trim()) throw new Error(`bad attributes in <${name}>: ${rest.slice(0, 40)}`);
      if (stack.length === 0) roots++;
      names.push(name);
      if (!self) stack.push(name);
    }
    i = gt + 1;
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('> <')}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
  return names;
}
