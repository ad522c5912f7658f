import type { ChannelDefinition, DestinationConfig, FoundIdentifier, MessageStatus, PayloadKind } from '../../runtime/index.js';
import { emitChannel } from '../compiler/emit.js';
import { loadChannel } from '../compiler/load-channel.js';
import { withSpecRelativePaths } from '../../runtime/serve/spec-paths.js';
import { resolve } from 'node:path';
import type { Diagnostic } from '../diagnostics/diagnostic.js';
import { hasErrors } from '../diagnostics/diagnostic.js';
import { validateSpecs } from '../spec/validate.js';
import { ackCodesOf, acksOf, decodeBytes, deliveryPayloads, describeCondition, inputKind, parseBatch, runChannel } from '../../runtime/index.js';

/** One ACK as it would go back to the sender. */
export interface PreviewAck {
  code: string;
  segments: string[];
}

/** Whether a destination gets the message, and why not when it does not. */
export interface PreviewRoute {
  destination: string;
  /** e.g. `http POST https://…`, `file out/{control_id}.hl7`, `channel results` */
  target: string;
  taken: boolean;
  why?: string;
}

/** What one destination would be sent: JSON as data, HL7 as its segments. */
/** `envelope`: what the sender reads from the message besides the body (a file name, an HTTP url, query or headers). */
export type PreviewPayload = ({ destination: string; kind: 'json'; json: unknown } | { destination: string; kind: 'hl7'; segments: string[] } | { destination: string; kind: 'text'; text: string }) & { envelope?: Record<string, unknown> };

/** What a channel does with one input, as `hl7c preview` shows it. */
export interface MessagePreview {
  channel: string;
  input: PayloadKind;
  output: PayloadKind;
  control_id: string | null;
  message_type: string | null;
  status: MessageStatus;
  reason?: string;
  /** The MSA-1 codes sent back, e.g. "AA" or "CA AA"; for http sources the HTTP status. */
  answer: string | null;
  acks: PreviewAck[];
  response?: { status: number; body: Record<string, unknown> };
  identifiers: Record<string, FoundIdentifier | null>;
  route: PreviewRoute[];
  payloads: PreviewPayload[];
}

/**
 * Runs one input through a compiled channel, exactly as `serve` would up to the point of
 * storing it, and describes the outcome: no store, no network, nothing written. An HL7 input
 * holding several messages (a batch, as a file source reads it) gives one preview per message.
 */
export function previewChannel(channel: ChannelDefinition, input: Buffer): MessagePreview[] {
  if (inputKind(channel) === 'hl7') {
    let messages: Buffer[];
    try {
      messages = parseBatch(input).messages.map((m) => m.toBytes());
    } catch {
      // Unreadable: the channel's own answer (AR with the reason) is the preview.
      messages = [input];
    }
    if (messages.length > 1) return messages.map((m) => previewOne(channel, m));
  }
  return [previewOne(channel, input)];
}

function previewOne(channel: ChannelDefinition, payload: Buffer): MessagePreview {
  const result = runChannel(channel, payload);
  const declared = result.message?.charset.declared ?? '';
  const segmentsOf = (bytes: Buffer) => decodeBytes(bytes, declared).text.split(/\r\n|\r|\n/).filter((s) => s.length > 0);
  const codes = [result.ackCode, result.applicationAckCode];
  const acks = acksOf(result).map((ack, i) => ({ code: codes[i] ?? '', segments: segmentsOf(ack) }));
  const taken = new Set(Object.keys(result.outputs));
  const route = Object.entries(channel.destinations).map(([destination, config]) => ({
    destination,
    target: describeTarget(config),
    taken: taken.has(destination),
    ...(taken.has(destination) ? {} : { why: whyNot(result.status, config) }),
  }));
  const payloads = deliveryPayloads(result, { channel, raw: payload }).map(({ destination, payload: queued }): PreviewPayload => {
    // What the sender reads from the message (file name, query, headers) rides in front of the body: shown apart.
    const envelope = result.envelopes?.[destination];
    const bytes = envelope ? queued.subarray(Buffer.byteLength(JSON.stringify(envelope)) + 1) : queued;
    const text = bytes.toString('utf8');
    const shown = ((): PreviewPayload => {
      if (/^(MSH|FHS|BHS)/.test(text)) return { destination, kind: 'hl7', segments: segmentsOf(bytes) };
      // A body: template is text, whatever its first character; JSON only when it parses.
      if (/^\s*[[{]/.test(text)) {
        try {
          return { destination, kind: 'json', json: JSON.parse(text) as unknown };
        } catch {
          // text that starts with a bracket
        }
      }
      return { destination, kind: 'text', text };
    })();
    return envelope ? { ...shown, envelope } : shown;
  });
  return {
    channel: channel.name,
    input: inputKind(channel),
    output: channel.output,
    control_id: result.message?.controlId || null,
    message_type: result.message?.getRaw('MSH-9') ?? null,
    status: result.status,
    ...(result.reason ? { reason: result.reason } : {}),
    answer: ackCodesOf(result) ?? (result.response ? String(result.response.status) : null),
    acks,
    ...(result.response ? { response: result.response } : {}),
    identifiers: result.identifiers,
    route,
    payloads,
  };
}

function whyNot(status: MessageStatus, config: DestinationConfig): string {
  if (status !== 'accepted') return `the message is ${status}: it goes to no destination`;
  if (config.when) return `when is false: ${describeCondition(config.when)}`;
  return 'not routed';
}

function describeTarget(config: DestinationConfig): string {
  const t = config.target;
  switch (t.kind) {
    case 'http':
      return `http ${t.method} ${t.url}`;
    case 'mllp':
      return `mllp ${t.host}:${t.port}`;
    case 'file':
      return `file ${t.dir}/${t.file_name}${t.content === 'raw' ? ' (raw bytes as received)' : ''}`;
    case 'channel':
      return `channel ${t.channel}`;
    case 'smtp':
      return `smtp ${t.host}:${t.port} to ${t.to.length} address${t.to.length === 1 ? '' : 'es'}`;
    case 'database':
      // The URL may hold a password: name the host and database only.
      return `database ${t.url.replace(/^[a-z]+:\/\/([^@/]*@)?/i, '').split('?')[0]} (${t.statements.length} statement${t.statements.length === 1 ? '' : 's'})`;
  }
}

/** The preview as text: one block per message, ACKs and HL7 payloads a segment per line, JSON pretty-printed. */
export function formatPreview(preview: MessagePreview): string {
  const lines: string[] = [];
  const indent = (text: string) => text.split('\n').map((l) => `    ${l}`);
  lines.push(`channel     ${preview.channel} (${preview.input.toUpperCase()} in, ${preview.output.toUpperCase()} out)`);
  lines.push(`message     ${[preview.message_type, preview.control_id].filter(Boolean).join(' ') || '(unreadable)'}`);
  lines.push(`outcome     ${preview.status}${preview.reason ? `: ${preview.reason}` : ''}`);
  if (preview.response) lines.push(`answer      HTTP ${preview.response.status} ${JSON.stringify(preview.response.body)}`);
  if (preview.acks.length === 0 && !preview.response) lines.push('ack         none');
  for (const ack of preview.acks) {
    lines.push(`ack         ${ack.code}`);
    for (const s of ack.segments) lines.push(`    ${s}`);
  }
  const ids = Object.entries(preview.identifiers);
  lines.push(`identifiers${ids.length ? '' : ' none'}`);
  for (const [name, found] of ids) {
    lines.push(`    ${name}: ${found ? `${found.id} (${found.source}${[found.assigning_authority, found.type_code].some(Boolean) ? `, ${[found.assigning_authority, found.type_code].filter(Boolean).join(' ')}` : ''})` : 'not found'}`);
  }
  lines.push(`route${preview.route.length ? '' : '       no destinations'}`);
  for (const r of preview.route) lines.push(`    ${r.taken ? '→' : '×'} ${r.destination} (${r.target})${r.taken ? '' : `: ${r.why}`}`);
  for (const p of preview.payloads) {
    lines.push(`payload     ${p.destination} (${p.kind.toUpperCase()})`);
    // One line at a time: a spread of 100,000 lines (a JSON array of every PID-3 repetition) overflows the stack.
    for (const line of p.kind === 'json' ? indent(JSON.stringify(p.json, null, 2)) : p.kind === 'text' ? indent(p.text) : p.segments.map((s) => `    ${s}`)) lines.push(line);
  }
  return lines.join('\n') + '\n';
}

/**
 * Compiles one spec for a preview, as `build` would. A `channel` destination's target is another
 * spec, not given here: a preview never hands anything on, so that one check is left out.
 */
export async function compileForPreview(spec: string, options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<{ channel?: ChannelDefinition; diagnostics: Diagnostic[] }> {
  const validation = await validateSpecs([spec], options);
  const diagnostics = validation.diagnostics.filter((d) => !CROSS_SPEC_ONLY.has(d.code));
  if (hasErrors(diagnostics) || validation.specs.length === 0) return { diagnostics };
  const emitted = emitChannel(validation.specs[0]!);
  // Where a file would land, as serve writes it: relative to the spec.
  return { channel: withSpecRelativePaths(loadChannel(emitted.code, emitted.fileName, options.env ?? process.env), resolve(options.cwd, spec)), diagnostics };
}

const CROSS_SPEC_ONLY = new Set(['spec/unknown-channel']);
