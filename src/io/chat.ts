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
 *
 * The rendered prompt is tokenised with BOS added (the template has none; HF's
 * `LlavaProcessor` adds it through the tokenizer), see `LmTokenizer.encode`.
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
export type ChatTemplateKind = 'llava-1.5';

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

const KNOWN: [ChatTemplateKind, Set<string>][] = [['llava-1.5', new Set(LLAVA_15_TEMPLATES.map(normalizeTemplate))]];

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

/**
 * Render `messages` with the checkpoint's chat template (recognised, not evaluated), as
 * `processor.apply_chat_template(messages, add_generation_prompt=…)` would.
 */
export function applyChatTemplate(
  template: string | null | undefined,
  messages: readonly ChatMessage[],
  opts: { addGenerationPrompt?: boolean; source?: string } = {},
): string {
  const kind = recogniseChatTemplate(template, opts.source ?? 'chat template');
  switch (kind) {
    case 'llava-1.5':
      return renderLlava15(messages, opts.addGenerationPrompt ?? true);
  }
}

/**
 * The prompt for one user turn: the question, with one image before it unless
 * `image: false`; e.g. `USER: <image>\n{question} ASSISTANT:` for LLaVA-1.5.
 */
export function chatPrompt(
  template: string | null | undefined,
  question: string,
  opts: { image?: boolean; source?: string } = {},
): string {
  const content: ChatContent[] = [];
  if (opts.image ?? true) content.push({ type: 'image' });
  content.push({ type: 'text', text: question });
  return applyChatTemplate(template, [{ role: 'user', content }], { addGenerationPrompt: true, source: opts.source });
}
