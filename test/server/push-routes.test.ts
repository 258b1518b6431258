import { describe, expect, it } from 'vitest';
import { hideLinkTokens } from '../../src/lib/logger.js';
import { createPushInbox } from '../../src/lib/push-inbox.js';
import { loggableUrl } from '../../src/server/index.js';

const TOKEN = 'Backup-Push-Token-5f2e9c71a04b';

describe('push URLs in logs', () => {
  it('the request log shows the route with the token hidden and the suffix kept, in any spelling', () => {
    expect(loggableUrl(`/api/v1/push/${TOKEN}`)).toBe('/api/v1/push/<token>');
    expect(loggableUrl(`/api/v1/push/${TOKEN}/start?x=1`)).toBe('/api/v1/push/<token>/start');
    expect(loggableUrl(`/api/v1/push/${TOKEN}/137`)).toBe('/api/v1/push/<token>/137');
    expect(loggableUrl(`/api/v1/push/${TOKEN}/a/b`)).toBe('/api/v1/push/<token>');
    expect(loggableUrl(`/api/v1/push%2F${TOKEN}`)).toBe('/api/v1/push/<token>');
    expect(loggableUrl(`/API/V1/PUSH/${TOKEN}`)).not.toContain(TOKEN);
    expect(loggableUrl(`/api/v1/push/${TOKEN}%zz`)).toBe('/api/v1/push/<token>');
    expect(loggableUrl('/api/v1/probes')).toBe('/api/v1/probes');
  });

  it('the log backstop hides a push token on any finished line', () => {
    const line = JSON.stringify({ msg: 'x', url: `http://vigil:8080/api/v1/push/${TOKEN}/fail`, alt: `%2Fpush%2F${TOKEN}` });
    const out = hideLinkTokens(line);
    expect(out).not.toContain(TOKEN);
    expect(out).toContain('/api/v1/push/<token>/fail');
    expect(JSON.parse(out)).toBeTypeOf('object');
  });
});

describe('push inbox', () => {
  it('keeps pings per probe in order, hands them over once, and keeps at most the newest 100', () => {
    const inbox = createPushInbox();
    for (let i = 0; i < 105; i++) inbox.record('a', { kind: 'success', at: i });
    inbox.record('b', { kind: 'start', at: 1 });
    const a = inbox.take('a');
    expect(a).toHaveLength(100);
    expect(a[0]?.at).toBe(5);
    expect(inbox.take('a')).toEqual([]);
    expect(inbox.take('b')).toEqual([{ kind: 'start', at: 1 }]);
    // An id from outside is only ever a Map key.
    expect(inbox.take('__proto__')).toEqual([]);
  });
});
