import { describe, expect, test } from 'vitest';
import { MAX_SAMPLE_CHARS, maskedSample, maskSecrets } from '../../src/lib/mask.js';

// Planted PII and secrets, each with what must be left of it and what must be gone.
const PLANTED: Array<[string, string, string]> = [
  ['login failed for alice.smith@example.com', 'login failed for a***@example.com', 'alice.smith'],
  ['"email":"bob+test@mail.example.org"', '"email":"b***@mail.example.org"', 'bob+test'],
  ['Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl', 'Authorization: Bearer eyJh***', 'eyJhbGciOiJIUzI1NiJ9'],
  ['auth header Bearer sk_live_51H8xYzAbCdEfGh', 'auth header Bearer sk_l***', '51H8xYzAbCdEfGh'],
  ['POST /login user=carol password=hunter2&next=/', 'POST /login user=carol password=***&next=/', 'hunter2'],
  ['{"user":"dave","password":"S3cr3t!pass"}', '{"user":"dave","password":"***"}', 'S3cr3t'],
  ['db passwd: correct-horse-battery', 'db passwd: ***', 'correct-horse'],
  ['api_key=AbC123dEf456GhI789jKl', 'api_key=***', 'AbC123dEf456'],
  ['?access_token=ya29.a0AfH6SMBx7&x=1', '?access_token=ya29***&x=1', 'SMBx7'],
  ['aws key AKIAIOSFODNN7EXAMPLE used', 'aws key AKIA*** used', 'IOSFODNN7EXAMPLE'],
  ['aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'aws_secret_access_key = ***', 'wJalrXUtnFEMI'],
  ['key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end', 'key wJal*** end', 'XUtnFEMI/K7MDENG'],
  ['card 4111 1111 1111 1111 charged', 'card 4111*** charged', '1111 1111 1111'],
];

describe('maskSecrets', () => {
  test.each(PLANTED)('%s', (line, masked, gone) => {
    const out = maskSecrets(line);
    expect(out).toBe(masked);
    expect(out).not.toContain(gone);
  });

  test('leaves ordinary log text alone', () => {
    const line = 'level=info msg="GET /orders 200" took=12ms user_id=42 path=/api/v1/orders';
    expect(maskSecrets(line)).toBe(line);
  });

  test('masks every occurrence in a line, JSON included', () => {
    const line = JSON.stringify({ from: 'x.y@corp.example', to: 'z@corp.example', headers: { authorization: 'Bearer abcdefgh12345678' } });
    const out = maskSecrets(line);
    expect(out).toBe('{"from":"x***@corp.example","to":"z***@corp.example","headers":{"authorization":"Bearer abcd***"}}');
  });
});

describe('maskedSample', () => {
  test('masks, joins lines and cuts to the limit', () => {
    const out = maskedSample(`user eve@example.com\n  token=abcdefghijklmnop ${'x '.repeat(200)}`);
    expect(out.startsWith('user e***@example.com token=abcd*** x x')).toBe(true);
    expect(out).toHaveLength(MAX_SAMPLE_CHARS);
    expect(out.endsWith('…')).toBe(true);
  });
});
