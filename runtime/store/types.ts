import type { MessageStatus } from '../channel/channel.js';

/** A message's life as stored: what came in, what was decided, what was answered. */
export interface StoredMessage {
  id: number;
  channel: string;
  spec_version: string;
  source: string;
  received_at: number;
  control_id: string | null;
  message_type: string | null;
  raw: Buffer | null;
  status: MessageStatus;
  reason: string | null;
  identifiers: Record<string, unknown> | null;
  ack_code: string | null;
  ack: Buffer | null;
  pruned: boolean;
}

/** `discarded`: an operator gave up on a dead or stopped entry (it is kept, and no longer holds its queue). */
export type DeliveryState = 'queued' | 'sending' | 'sent' | 'dead' | 'stopped' | 'replayed' | 'discarded';

export interface Delivery {
  id: number;
  message_id: number;
  channel: string;
  destination: string;
  state: DeliveryState;
  attempts: number;
  next_attempt_at: number;
  payload: Buffer | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  /** The node sending it now, and until when (state `sending`); another node may take it after. */
  lease_owner?: string | null;
  lease_until?: number | null;
}

/** A queue entry as a worker reads it: with its message's MSH-10 (for file names and logs). */
export type QueuedDelivery = Delivery & { control_id: string | null };

export interface StoredEvent {
  id: number;
  message_id: number;
  delivery_id: number | null;
  at: number;
  kind: string;
  detail: string | null;
}

/** What is written, in one transaction, before a message is acknowledged. */
export type NewMessage = Omit<StoredMessage, 'id' | 'raw' | 'pruned'> & {
  raw: Buffer;
  /** For a source with `dedupe`: a hash of the channel and the key fields' values (findFirstByKey). */
  dedupe_key?: string | null;
  /** One queue entry per destination the message goes to. */
  deliveries: Array<{ destination: string; payload: Buffer }>;
};

export interface MessageFilter {
  channel?: string;
  status?: string;
  since?: number;
  /** MSH-10, exactly. */
  controlId?: string;
  /** MSH-9: `ADT` matches every ADT event, `ADT^A08` that event (with or without a structure). */
  messageType?: string;
  /** The value of an identifier found (patient, order, visit, document …), exactly. */
  identifier?: string;
  /** Received before this time (ms). */
  until?: number;
  /** Paging: only messages with an id below this one (newest first) or above it (oldest first). */
  afterId?: number;
  /** Newest first (default: oldest first, the order they were received in). */
  newestFirst?: boolean;
  limit?: number;
}

/**
 * Message statuses and delivery states a filter's `status` may name. `error_queue` is what an
 * operator has to look at: rejected or error messages, and dead or stopped entries.
 */
export const DELIVERY_STATES_FILTERED = ['queued', 'sending', 'sent', 'dead', 'stopped', 'discarded'] as const;

/**
 * A destination an operator paused: no node sends from its queue until it is resumed (entries
 * keep being queued). Kept in the store, so it holds across restarts and for every node.
 */
export interface DestinationPause {
  channel: string;
  destination: string;
  /** Who paused it (a token's name, `cli:<user>`). */
  paused_by: string;
  paused_at: number;
}

/** One thing an operator did or looked at through the admin API (or the CLI). */
export interface AuditEntry {
  id: number;
  at: number;
  /** The token's name (`local` on loopback without tokens, `cli:<user>` from the CLI). */
  who: string;
  role: string;
  /** e.g. `message.view`, `message.replay`, `delivery.discard`, `destination.pause`, `auth.refused`. */
  action: string;
  /** What it was done to: `message 12`, `adt-in/webhook`, a filter. */
  target: string;
  /** The remote address, or `cli`. */
  remote: string;
  detail: string | null;
}

export type NewAuditEntry = Omit<AuditEntry, 'id'>;
