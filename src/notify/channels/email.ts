import { createHash } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import nodemailer, { type SendMailOptions, type SMTPSentMessageInfo, type Transporter } from 'nodemailer';
import { codeOf, messageOf } from '../../lib/errors.js';
import { fieldOf } from '../../lib/fields.js';
import { type Message, render } from '../message.js';
import { type Channel, DeliveryError, defineChannel, type Notification, type SendContext, type SendResult } from '../types.js';

// One address, bare or with a display name: `vigil@example.com` or `Vigil <vigil@example.com>`.
const ADDRESS = '^([^\\s@<>]+@[^\\s@<>]+|[^<>]*<[^\\s@<>]+@[^\\s@<>]+>)$';

const schema = Type.Object(
  {
    /** nodemailer connection URL: `smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://…:465`. */
    smtp: Type.String({
      pattern: '^smtps?://[^\\s]+$',
      expected: 'an smtp:// or smtps:// URL such as smtp://user:pass@mail.example.com:587, best read from an environment variable',
    }),
    from: Type.String({ pattern: ADDRESS, expected: 'an email address, e.g. vigil@example.com or "Vigil <vigil@example.com>"' }),
    to: Type.Array(Type.String({ pattern: ADDRESS, expected: 'an email address' }), {
      minItems: 1,
      expected: 'a list of email addresses, e.g. [eng@example.com]',
    }),
    /** Keep connections open between messages instead of one connection per message. */
    pool: Type.Boolean({ default: true }),
    /** Connections the pool opens at most. */
    maxConnections: Type.Integer({ minimum: 1, maximum: 50, default: 5, expected: 'a whole number of connections, 1-50' }),
  },
  { additionalProperties: false },
);

/** The `email` channel's fields in `channels:`. */
export type EmailConfig = Static<typeof schema>;

// Subjects stay readable in an inbox list; the body carries the whole text.
const MAX_SUBJECT = 200;
// The readable part of a Message-ID; the hash beside it keeps ids distinct whatever is cut off.
const MAX_ID_SLUG = 64;

export const email = defineChannel({
  schema,
  person: { field: 'email' },
  create(name, config): Channel {
    const server = smtpServer(config.smtp);
    const hide = secretScrubber(server);
    const common = {
      url: config.smtp,
      // The outbox owns retries: a message whose connection drops fails now instead of being requeued here.
      maxRequeues: 0,
      // Message content comes from probed systems; never let it make nodemailer read a file or fetch a URL.
      disableFileAccess: true,
      disableUrlAccess: true,
      logger: false,
    } as const;
    const transporter: Transporter<SMTPSentMessageInfo> = config.pool
      ? nodemailer.createTransport({ ...common, pool: true, maxConnections: config.maxConnections })
      : nodemailer.createTransport(common);

    return {
      async send(n: Notification, ctx: SendContext): Promise<SendResult> {
        const now = ctx.clock.now();
        const message = render(n, now);
        const ids = threadIds(n);
        // The first email's id as delivered: Microsoft 365 and Amazon SES replace the Message-ID they are given.
        const root = n.ref?.threadId ?? ids.root;
        const messageId = n.action === 'trigger' ? ids.root : ids.own;
        const mail: SendMailOptions = {
          from: config.from,
          // Escalation pages a person through this channel: to them, not to the channel's list.
          to: n.recipient?.email ? [n.recipient.email] : config.to,
          subject: subjectOf(n, message),
          text: textOf(n, message),
          html: htmlOf(n, message),
          date: new Date(now),
          messageId,
          headers: {
            // RFC 3834: tells vacation responders and ticket systems not to answer a page.
            'Auto-Submitted': 'auto-generated',
            'X-Vigil-Incident': n.dedupKey,
            'X-Vigil-Action': n.action,
          },
          signal: ctx.signal,
        };
        // A test page stands alone: there is no first email to thread it under.
        if (n.action !== 'trigger' && n.action !== 'test') {
          mail.inReplyTo = root;
          mail.references = root === ids.root ? [root] : [ids.root, root];
        }
        if (n.incident.severity === 'critical' && (n.action === 'trigger' || n.action === 'remind')) mail.priority = 'high';

        let info: SMTPSentMessageInfo;
        try {
          info = await transporter.sendMail(mail);
        } catch (err) {
          throw deliveryError(err, server.where, ctx.signal, hide);
        }
        // Some recipients took it: retrying would page them twice, so the ones refused are only logged.
        if (info.rejected.length > 0) {
          const reasons = (info.rejectedErrors ?? []).map((e) => hide(e.response ?? e.message));
          ctx.logger.warn({ channel: name, notification: n.id, rejected: info.rejected, reasons }, 'email recipients rejected');
        }
        ctx.logger.debug(
          { channel: name, notification: n.id, action: n.action, messageId, serverMessageId: info.serverMessageId },
          'email sent',
        );
        if (n.action === 'test') return {};
        return { ref: { threadId: n.action === 'trigger' ? (info.serverMessageId ?? ids.root) : root } };
      },
      async close() {
        transporter.close();
      },
    };
  },
});

/** What of the SMTP URL may be shown (`host:port`) and what must never be (the credentials). */
interface SmtpServer {
  where: string;
  user: string;
  password: string;
}

function smtpServer(smtp: string): SmtpServer {
  let url: URL;
  try {
    url = new URL(smtp);
  } catch {
    // URL's own error carries the input, password included.
    throw new TypeError('email channel: the smtp value is not a valid URL (expected smtp://user:pass@host:port)');
  }
  const port = url.port || (url.protocol === 'smtps:' ? '465' : '587');
  return { where: `${url.hostname}:${port}`, user: safeDecode(url.username), password: safeDecode(url.password) };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Removes the SMTP password from text, in every form it may travel in: as typed, URL-encoded, and
 * base64 inside AUTH PLAIN / AUTH LOGIN exchanges a server might echo in its reply.
 */
function secretScrubber({ user, password }: SmtpServer): (text: string) => string {
  if (password.length === 0) return (text) => text;
  const forms = [
    password,
    encodeURIComponent(password),
    Buffer.from(password).toString('base64'),
    Buffer.from(`\0${user}\0${password}`).toString('base64'),
    Buffer.from(`${user}\0${user}\0${password}`).toString('base64'),
  ]
    .filter((f) => f.length > 0)
    .sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const f of forms) out = out.split(f).join('<secret>');
    return out.replace(/\b(smtps?:\/\/[^\s:/@]*):[^\s/@]+@/gi, '$1:<secret>@');
  };
}

/** Classifies a nodemailer failure for the outbox: an SMTP refusal of the message is final, anything else may pass later. */
function deliveryError(err: unknown, where: string, signal: AbortSignal, hide: (text: string) => string): DeliveryError {
  const reason = hide(messageOf(err));
  // NodemailerError's fields, read as unknowns: what was thrown is not guaranteed to be one.
  const code = codeOf(err);
  const responseCode = fieldOf(err, 'responseCode');
  if (code === 'EABORT' || signal.aborted) {
    return new DeliveryError(`email via ${where} not sent: the send deadline passed before the SMTP server took the message`, {
      retryable: true,
    });
  }
  const tag = [code, responseCode].filter((x) => x !== '' && x !== undefined).join(' ');
  if (typeof responseCode === 'number') {
    // nodemailer applies RFC 5321 (5yz final, 4yz transient, 503 only a session-state complaint); same fallback when it did not say.
    const said = fieldOf(err, 'permanent');
    const permanent = typeof said === 'boolean' ? said : responseCode >= 500 && responseCode !== 503;
    const command = fieldOf(err, 'command');
    const step = typeof command === 'string' && command !== '' ? ` at ${command.split(' ')[0]}` : '';
    const hint = code === 'EAUTH' ? ' (check the user and password in the smtp URL)' : '';
    return new DeliveryError(`email via ${where} refused${step}: ${reason} [${tag}]${hint}`, { retryable: !permanent });
  }
  // Without a server reply these are vigil's own settings (a user without a password, a bad option): only a config change helps.
  if (code === 'EAUTH' || code === 'ENOAUTH' || code === 'ECONFIG') {
    return new DeliveryError(`email via ${where} cannot be sent: ${reason} [${tag}] (fix the channel's smtp URL)`, { retryable: false });
  }
  const originalCode = fieldOf(err, 'originalCode');
  const original = typeof originalCode === 'string' && originalCode !== '' && originalCode !== code ? ` ${originalCode}` : '';
  return new DeliveryError(`email via ${where} failed: ${reason} [${tag}${original}]`, { retryable: true });
}

/**
 * Message-IDs derived from the incident, so every retry of a notification carries the same id and
 * every later email can thread under the first even when no ref came back. The domain is the vigil
 * instance's own host (from the incident link): staging and production can page one mailbox without
 * their ids colliding, which matters because Gmail silently drops a message whose Message-ID it has
 * already seen. The hash covers the open time too, so an incident id reused after a database reset
 * starts a new thread.
 */
function threadIds(n: Notification): { root: string; own: string } {
  const slug = n.dedupKey
    .replace(/[^A-Za-z0-9_-]+/g, '.')
    .replace(/^\.+|\.+$/g, '')
    .slice(0, MAX_ID_SLUG)
    .replace(/\.+$/, '');
  const hash = createHash('sha256').update(`${n.dedupKey}\n${n.incident.openedAt}`).digest('hex').slice(0, 12);
  const local = `vigil.${slug ? `${slug}.` : ''}${hash}`;
  const domain = idDomain(n.links.incident);
  return { root: `<${local}@${domain}>`, own: `<${local}.${n.action}.${n.id}@${domain}>` };
}

function idDomain(link: string): string {
  try {
    const host = new URL(link).hostname.replace(/^\[|\]$/g, '');
    if (/^[A-Za-z0-9.-]+$/.test(host) && !/^[\d.]+$/.test(host)) return host;
  } catch {
    // A relative or odd link: fall through to the fixed domain.
  }
  return 'vigil';
}

/** `[SEVERITY] …` on every subject; trigger and remind titles already start with it. */
function subjectOf(n: Notification, message: Message): string {
  const sev = `[${n.incident.severity.toUpperCase()}]`;
  const title = n.action === 'acknowledge' || n.action === 'resolve' ? `${sev} ${message.title}` : message.title;
  const line = title.replace(/\s+/g, ' ').trim();
  return line.length > MAX_SUBJECT ? `${line.slice(0, MAX_SUBJECT - 1)}…` : line;
}

/** The signed one-click links, on pages that still ask someone to act. */
function actionLinks(n: Notification): { ack: string; resolve: string } | undefined {
  const { ack, resolve } = n.links;
  return ack && resolve && (n.action === 'trigger' || n.action === 'remind') ? { ack, resolve } : undefined;
}

function textOf(n: Notification, message: Message): string {
  const act = actionLinks(n);
  return act ? `${message.text}\n\nAcknowledge: ${act.ack}\nResolve: ${act.resolve}` : message.text;
}

function htmlOf(n: Notification, message: Message): string {
  const rows = message.facts
    .map(
      ([k, v]) =>
        `<tr><th align="left" style="padding:2px 12px 2px 0;color:#555;font-weight:normal;vertical-align:top">${escapeHtml(k)}</th>` +
        `<td style="padding:2px 0;white-space:pre-wrap">${escapeHtml(v)}</td></tr>`,
    )
    .join('\n');
  const links = [`<a href="${escapeHtml(n.links.incident)}">Open the incident</a>`];
  if (n.links.runbook) links.push(`<a href="${escapeHtml(n.links.runbook)}">Runbook</a>`);
  if (n.links.dashboard) links.push(`<a href="${escapeHtml(n.links.dashboard)}">Dashboard</a>`);
  if (n.links.screenshot) links.push(`<a href="${escapeHtml(n.links.screenshot)}">Screenshot</a>`);
  const act = actionLinks(n);
  // Each link opens a page that asks to confirm: mail scanners follow links, and a GET changes nothing.
  const button = (href: string, label: string, color: string) =>
    `<a href="${escapeHtml(href)}" style="display:inline-block;padding:6px 14px;margin-right:8px;border-radius:4px;background:${color};color:#fff;text-decoration:none">${label}</a>`;
  const actions = act ? [`<p>${button(act.ack, 'Acknowledge', '#555')}${button(act.resolve, 'Resolve', '#2e8540')}</p>`] : [];
  return [
    '<!doctype html>',
    '<html><head><meta charset="utf-8"></head>',
    '<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#222">',
    `<div style="border-left:4px solid ${escapeHtml(message.color)};padding:4px 12px">`,
    `<h2 style="font-size:16px;margin:4px 0 12px">${escapeHtml(message.title)}</h2>`,
    `<table cellpadding="0" cellspacing="0">\n${rows}\n</table>`,
    ...actions,
    `<p>${links.join(' &middot; ')}</p>`,
    '</div>',
    '</body></html>',
  ].join('\n');
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe inside HTML elements and quoted attributes: incident messages quote whatever the target answered. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}
