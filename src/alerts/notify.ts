import nodemailer from 'nodemailer';
import type { Logger } from '../../runtime/index.js';
import type { AlertsConfig } from '../config/serve-config.js';
import type { AlertNotice } from './engine.js';

/** Tries per notice and channel (webhook, e-mail), with doubling waits between them. */
const TRIES = 3;
const FIRST_WAIT_MS = 1000;

export interface Notifier {
  send(notice: AlertNotice): Promise<void>;
  /** Waits for notices being delivered, then closes the SMTP connection. */
  close(): Promise<void>;
}

/**
 * Delivers notices to the webhook (JSON POST) and by e-mail, one after the other in the order
 * they fired, each tried a few times; a notice that cannot be delivered is logged (rule and
 * state only) and the next one goes on.
 */
export function createNotifier(config: AlertsConfig, log?: Logger, options: { firstWaitMs?: number } = {}): Notifier {
  const mailer = config.email
    ? nodemailer.createTransport({
        host: config.email.smtp.host,
        port: config.email.smtp.port ?? (config.email.smtp.secure ? 465 : 587),
        secure: !!config.email.smtp.secure,
        auth: config.email.smtp.user ? { user: config.email.smtp.user, pass: config.email.smtp.password ?? '' } : undefined,
      })
    : undefined;
  let chain: Promise<void> = Promise.resolve();
  const firstWait = options.firstWaitMs ?? FIRST_WAIT_MS;

  const tryHard = async (what: string, notice: AlertNotice, once: () => Promise<void>) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await once();
        return;
      } catch (err) {
        if (attempt >= TRIES) {
          log?.error({ rule: notice.rule, state: notice.state, to: what, err: (err as Error).message }, `alert notice not delivered by ${what} after ${TRIES} tries`);
          return;
        }
        await new Promise((r) => setTimeout(r, firstWait * 2 ** (attempt - 1)));
      }
    }
  };

  const webhook = async (notice: AlertNotice) => {
    const hook = config.webhook!;
    const response = await fetch(hook.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...hook.headers },
      body: JSON.stringify(notice),
      signal: AbortSignal.timeout(hook.timeoutMs),
    });
    await response.arrayBuffer().catch(() => undefined);
    if (!response.ok) throw new Error(`the webhook answered HTTP ${response.status}`);
  };

  const mail = async (notice: AlertNotice) => {
    const email = config.email!;
    await mailer!.sendMail({ from: email.from, to: email.to, subject: mailSubject(notice), text: mailText(notice) });
  };

  return {
    send(notice) {
      const run = chain.then(async () => {
        if (config.webhook) await tryHard('webhook', notice, () => webhook(notice));
        if (mailer) await tryHard('e-mail', notice, () => mail(notice));
      });
      chain = run.catch(() => undefined);
      return run;
    },
    async close() {
      await chain;
      mailer?.close();
    },
  };
}

export function mailSubject(n: AlertNotice): string {
  return `[hl7c] ${n.state === 'firing' ? 'FIRING' : 'RESOLVED'} ${n.rule}: ${n.summary}`.slice(0, 200);
}

export function mailText(n: AlertNotice): string {
  return [
    n.summary,
    '',
    `rule:        ${n.rule} (${n.kind})`,
    `state:       ${n.state}`,
    ...(n.channel ? [`channel:     ${n.channel}`] : []),
    ...(n.destination ? [`destination: ${n.destination}`] : []),
    `value:       ${n.value} (threshold ${n.threshold})`,
    `since:       ${n.since}`,
    `at:          ${n.at}`,
    `node:        ${n.node}`,
    '',
    'Details (messages, reasons, attempts) are on the hl7c dashboard and in `hl7c messages`; this notice carries no patient data.',
    '',
  ].join('\n');
}
