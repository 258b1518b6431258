import { type Static, Type } from '@sinclair/typebox';
import { Agent } from 'undici';
import { fieldOf } from '../../lib/fields.js';
import { createRedactor, MIN_SECRET_LENGTH, type Redactor } from '../../lib/redactor.js';
import { type Message, render } from '../message.js';
import { callJson, cut, excerpt, type JsonAnswer, parseRetryAfter } from '../provider-http.js';
import { DeliveryError, defineChannel, type Notification, type SendContext, type SendResult } from '../types.js';

const schema = Type.Object(
  {
    /**
     * The HTTP trigger URL of a Teams Workflows flow ("Post to a channel when a webhook request is
     * received"). A secret: its `sig` parameter is the only credential, so whoever has it can post.
     */
    url: Type.String({
      pattern: '^https?://[^\\s]+$',
      expected: 'a Teams Workflows webhook URL (https://…/workflows/…/triggers/manual/paths/invoke?…&sig=…), from ${TEAMS_WEBHOOK_URL}',
    }),
  },
  { additionalProperties: false },
);

/** A `teams` channel's config. */
export type TeamsConfig = Static<typeof schema>;

/** One Adaptive Card body element vigil sends: a line of text or a table of facts. */
export type CardElement =
  | { type: 'TextBlock'; text: string; wrap: true; weight?: 'Bolder'; size?: 'Small' | 'Medium'; color?: string; isSubtle?: boolean }
  | { type: 'FactSet'; facts: Array<{ title: string; value: string }> };

/** What a Workflows webhook is posted: a message with one Adaptive Card attachment. */
export interface TeamsMessage {
  type: 'message';
  attachments: Array<{
    contentType: 'application/vnd.microsoft.card.adaptive';
    contentUrl: null;
    content: {
      $schema: string;
      type: 'AdaptiveCard';
      version: '1.4';
      fallbackText: string;
      body: CardElement[];
      actions: Array<{ type: 'Action.OpenUrl'; title: string; url: string }>;
      msteams: { width: 'Full' };
    };
  }>;
}

/**
 * Lengths kept well inside Teams' limit of about 28 KB a message, so a long error can never make
 * the whole card bounce.
 */
const LIMITS = { title: 400, fact: 1000, error: 3000, facts: 12 };

/** Adaptive Card colours (named, not hex: the host theme picks the shade). */
const COLORS = { critical: 'Attention', error: 'Attention', warning: 'Warning', info: 'Accent' } as const;

export const teams = defineChannel({
  schema,
  // A workflow posts to the channel or chat it was made for; a person's page reaches them only there.
  person: 'own-target',
  create(name, config, deps) {
    const url = new URL(config.url);
    // `sig` is the credential; the whole URL and its query carry it too, in whatever form an answer quotes.
    const sig = url.searchParams.get('sig') ?? '';
    const redactor = createRedactor([config.url, url.search, ...(sig.length >= MIN_SECRET_LENGTH ? [sig] : [])]);
    const where = `Teams workflow POST to ${url.host}`;
    // Backstops only: the worker's per-send signal normally ends a request first.
    const agent = new Agent({ connect: { timeout: 10_000 }, headersTimeout: 30_000, bodyTimeout: 30_000 });
    const log = deps.logger.child({ channel: name, type: 'teams' });
    return {
      async send(n: Notification, ctx: SendContext): Promise<SendResult> {
        const message = card(n, render(n, ctx.clock.now()));
        const answer = await callJson(url.href, { method: 'POST', body: message, agent, where, redactor }, ctx);
        // A workflow answers 202 once it has queued the run; the card is posted by the run itself.
        if (answer.status >= 200 && answer.status < 300) {
          log.debug({ action: n.action, status: answer.status }, 'teams workflow accepted');
          return {};
        }
        throw answerError(answer, where, redactor, ctx.clock.now());
      },
      async close() {
        await agent.close();
      },
    };
  },
});

/**
 * The message for one notification. No update in place exists for a workflow webhook, so each action
 * is its own card, its title saying what changed; Acknowledge and Resolve only on cards that ask to act.
 */
export function card(n: Notification, msg: Message): TeamsMessage {
  const settled = n.action === 'acknowledge' || n.action === 'resolve' || n.action === 'test';
  const color = n.action === 'resolve' ? 'Good' : settled ? 'Default' : COLORS[n.incident.severity];
  const body: CardElement[] = [
    { type: 'TextBlock', text: cut(escapeMarkdown(msg.title), LIMITS.title), wrap: true, weight: 'Bolder', size: 'Medium', color },
  ];
  if (n.recipient)
    body.push({ type: 'TextBlock', text: `Paging ${cut(escapeMarkdown(n.recipient.name), LIMITS.title)}`, wrap: true, weight: 'Bolder' });
  const error = msg.facts.find(([label]) => label === 'Last error');
  body.push({
    type: 'FactSet',
    facts: msg.facts
      .filter(([label]) => label !== 'Last error')
      .slice(0, LIMITS.facts)
      .map(([title, value]) => ({ title, value: cut(escapeMarkdown(value), LIMITS.fact) })),
  });
  if (error) body.push({ type: 'TextBlock', text: `**Last error:** ${cut(escapeMarkdown(error[1]), LIMITS.error)}`, wrap: true });
  body.push({ type: 'TextBlock', text: `dedup ${escapeMarkdown(n.dedupKey)}`, wrap: true, size: 'Small', isSubtle: true });

  const actions = [{ type: 'Action.OpenUrl' as const, title: 'Incident', url: n.links.incident }];
  if (n.links.runbook) actions.push({ type: 'Action.OpenUrl', title: 'Runbook', url: n.links.runbook });
  if (n.links.dashboard) actions.push({ type: 'Action.OpenUrl', title: 'Dashboard', url: n.links.dashboard });
  // Signed links open vigil's confirmation page: opening one changes nothing, so a link preview cannot act.
  if (n.links.ack && n.links.resolve && (n.action === 'trigger' || n.action === 'remind')) {
    actions.push({ type: 'Action.OpenUrl', title: 'Acknowledge', url: n.links.ack });
    actions.push({ type: 'Action.OpenUrl', title: 'Resolve', url: n.links.resolve });
  }
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          fallbackText: cut(msg.title, LIMITS.title),
          body,
          actions,
          msteams: { width: 'Full' },
        },
      },
    ],
  };
}

/** A refusal: 429 and 5xx may pass; any other answer (a bad card, a disabled or deleted flow) will not. */
function answerError(answer: JsonAnswer, where: string, redactor: Redactor, now: number): DeliveryError {
  const { status } = answer;
  const said = reason(answer.text, redactor);
  const answered = `${where} answered ${status}${said ? `: ${said}` : ''}`;
  if (status === 429 || status === 408 || status >= 500) {
    const wait = parseRetryAfter(answer.retryAfter, now);
    return new DeliveryError(answered, { retryable: true, ...(wait === undefined ? {} : { retryAfterMs: wait }) });
  }
  const hint =
    status === 400
      ? 'the workflow refused the card'
      : status === 401 || status === 403 || status === 404
        ? 'the URL is wrong, or the flow was turned off or deleted; check `url`'
        : status >= 300 && status < 400
          ? 'redirects are not followed: set url to the final address'
          : 'permanent, not retried';
  return new DeliveryError(`${answered} (${hint})`, { retryable: false });
}

/** Power Automate answers errors as `{ error: { code, message } }`; otherwise the body's start. */
function reason(text: string, redactor: Redactor): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return excerpt(redactor.text(text));
  }
  const error = fieldOf(parsed, 'error');
  const code = fieldOf(error, 'code');
  const message = fieldOf(error, 'message');
  if (typeof code !== 'string') return excerpt(redactor.text(text));
  return excerpt(redactor.text(typeof message === 'string' ? `${code}: ${message}` : code));
}

/**
 * TextBlocks read a Markdown subset: a probe's error text must not become a link or bold, so the
 * characters that start one are escaped (CommonMark backslash escapes).
 */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_[\]<]/g, (c) => `\\${c}`);
}
