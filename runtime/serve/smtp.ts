import nodemailer from 'nodemailer';
import type { SmtpDestinationConfig } from '../channel/channel.js';
import type { Logger } from '../log.js';
import type { AttemptOutcome, Sender } from './senders.js';

/**
 * An SMTP destination: one mail per queue entry. Subject and text were rendered when the message
 * was received (they are the entry's payload); addresses and the server come from the config.
 * A 5xx answer (address refused, message refused) fails for good; anything else is retried.
 */
export function smtpSender(target: SmtpDestinationConfig, log: Logger): Sender {
  const transport = nodemailer.createTransport({
    host: target.host,
    port: target.port,
    secure: target.secure,
    auth: target.user ? { user: target.user, pass: target.password ?? '' } : undefined,
    connectionTimeout: target.timeout_ms,
    greetingTimeout: target.timeout_ms,
    socketTimeout: target.timeout_ms,
  });
  return {
    async send(delivery): Promise<AttemptOutcome> {
      let mail: { subject?: string; text?: string };
      try {
        mail = JSON.parse((delivery.payload ?? Buffer.from('{}')).toString('utf8')) as { subject?: string; text?: string };
      } catch (err) {
        return { ok: false, retry: false, error: `the queued mail is not readable: ${(err as Error).message}` };
      }
      try {
        const info = await transport.sendMail({
          from: target.from,
          to: target.to,
          ...(target.cc?.length ? { cc: target.cc } : {}),
          ...(target.reply_to ? { replyTo: target.reply_to } : {}),
          headers: target.headers,
          subject: mail.subject ?? '',
          text: mail.text ?? '',
        });
        return { ok: true, detail: `mail accepted for ${info.accepted.length} recipient${info.accepted.length === 1 ? '' : 's'}` };
      } catch (err) {
        const e = err as Error & { responseCode?: number; code?: string };
        const final = typeof e.responseCode === 'number' && e.responseCode >= 500;
        if (!final) log.debug({ err: e.message }, 'smtp attempt failed');
        return { ok: false, retry: !final, error: e.responseCode ? `SMTP ${e.responseCode}: ${e.message}` : e.code ? `${e.code}: ${e.message}` : e.message };
      }
    },
    close: async () => transport.close(),
  };
}
