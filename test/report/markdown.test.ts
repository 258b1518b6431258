import { describe, expect, it } from 'vitest';
import { escapeMarkdown, renderReportMarkdown } from '../../src/report/markdown.js';
import { sampleReport } from '../helpers/report-sample.js';

/** Each table as rows of cells, split on the pipes Markdown would split on (not on `\|`). */
function tables(md: string): string[][][] {
  const found: string[][][] = [];
  let current: string[][] | null = null;
  for (const line of md.split('\n')) {
    if (!line.startsWith('|')) {
      current = null;
      continue;
    }
    if (current === null) {
      current = [];
      found.push(current);
    }
    current.push(
      line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim()),
    );
  }
  return found;
}

/**
 * Rows of the tables too wide for a line, rendered as list items `- **first** · H1: v1 · …`
 * (wrapped onto indented lines), as cells again.
 */
function rows(md: string): string[][] {
  return unwrapped(md).flatMap((line) => {
    const m = /^- \*\*(.*?)\*\* · (.*)$/.exec(line);
    if (m !== null) return [[m[1]!, ...m[2]!.split(' · ').map((pair) => pair.slice(pair.indexOf(': ') + 2))]];
    return tables(line).flat();
  });
}

/** The lines as written before wrapping: a list item's indented continuation lines joined to it. */
function unwrapped(md: string): string[] {
  return md.replace(/\n {2}(?=\S)/g, ' ').split('\n');
}

function rowOf(md: string, first: string): string[] | undefined {
  return rows(md).find((row) => row[0] === first);
}

describe('renderReportMarkdown', () => {
  it('opens with the verdict, then the gaps and the advice, before any figure', () => {
    const md = renderReportMarkdown(sampleReport());
    const headings = md.split('\n').filter((l) => l.startsWith('## '));
    expect(headings[0]).toBe('## Go / no-go: **NO-GO**');
    const gaps = md.indexOf('- Audit logging for all API calls (audit-logging, unknown)');
    expect(gaps).toBeGreaterThan(md.indexOf('NO-GO'));
    expect(md.indexOf('- Alerting configured for error rate and latency (alerting, fail)')).toBeGreaterThan(-1);
    expect(md.indexOf('2 critical gaps: do not launch.')).toBeLessThan(md.indexOf('## Summary'));
    expect(rowOf(md, 'Audit logging for all API calls (audit-logging)')?.[1]).toBe('UNKNOWN');
  });

  it('has the report sections as headings', () => {
    const headings = renderReportMarkdown(sampleReport())
      .split('\n')
      .filter((l) => l.startsWith('## '));
    expect(headings).toEqual([
      '## Go / no-go: **NO-GO**',
      '## Summary',
      '## Probes',
      '## Incidents',
      '## Checklist evidence',
      '## Top failure reasons',
    ]);
  });

  it('gives every row of a table as many cells as its header, whatever the text holds', () => {
    const r = sampleReport();
    r.probes[0]!.id = 'a|b';
    r.incidents.list[0]!.summary = 'first | second\nthird line';
    r.scorecard.items[0]!.evidence[0]!.detail = 'x || y';
    const md = renderReportMarkdown(r);
    const all = tables(md);
    expect(all.length).toBeGreaterThan(10);
    for (const table of all) {
      const width = table[0]?.length;
      for (const row of table) expect(row).toHaveLength(width ?? 0);
    }
    expect(rowOf(md, 'a\\|b')?.[1]).toBe('http');
    expect(unwrapped(md).join('\n')).toContain('first \\| second / third line');
    expect(md).toContain('x \\|\\| y');
  });

  it('keeps HTML and Markdown in strings from taking effect', () => {
    const r = sampleReport({ service: '[shop](javascript:alert(1))' });
    r.probes[0]!.id = '<img src=x onerror=alert(1)>';
    r.probes[0]!.last = { at: '2026-11-25T00:00:00.000Z', ok: false, code: 'HTTP_STATUS', message: '`rm -rf` *now*' };
    const md = renderReportMarkdown(r);
    expect(md).not.toMatch(/(?<!\\)<img/);
    expect(md).toContain('\\<img src=x onerror=alert(1)\\>');
    expect(md).toContain('# \\[shop\\](javascript:alert(1)): 30-day launch report');
    expect(md).toContain('\\`rm -rf\\` \\*now\\*');
  });

  it('renders unmeasured figures as a dash', () => {
    const r = sampleReport();
    Object.assign(r.probes[0]!, { uptime: null, p50Ms: null, p95Ms: null });
    r.incidents.mttaMs = null;
    const md = renderReportMarkdown(r);
    const api = rowOf(md, 'api-health');
    expect(api?.slice(2, 6)).toEqual(['—', '—', '—', '1.9 s']);
    expect(rowOf(md, 'api-cert')?.[5]).toBe('—');
    expect(rowOf(md, '3')?.[2]).toBe('—');
    expect(md).not.toMatch(/NaN|undefined|null/);
  });

  it('marks figures that miss their target', () => {
    const md = renderReportMarkdown(sampleReport());
    expect(rowOf(md, 'api-health')?.[2]).toBe('99.65 % ▲');
    expect(rowOf(md, '#1')?.[9]).toBe('22 min ▲');
    expect(rowOf(md, '#2')?.[9]).toBe('4 min 10 s');
  });

  it('shows daily series as sparklines with a gap for days without data', () => {
    const md = renderReportMarkdown(sampleReport());
    const line = md.split('\n').find((l) => l.startsWith('- Daily p95 (2026-10-27 to 2026-11-25)')) ?? '';
    const spark = /`([^`]*)`/.exec(line)?.[1] ?? '';
    expect(Array.from(spark)).toHaveLength(30);
    expect(Array.from(spark)[11]).toBe('·');
    expect(Array.from(spark)[17]).toBe('█');
  });
});

describe('escapeMarkdown', () => {
  it('escapes pipes and markup, and keeps a cell on one line', () => {
    expect(escapeMarkdown('a|b')).toBe('a\\|b');
    expect(escapeMarkdown('one\r\ntwo\nthree')).toBe('one / two / three');
    expect(escapeMarkdown('<b>*x*</b> [l](u) `c` \\')).toBe('\\<b\\>\\*x\\*\\</b\\> \\[l\\](u) \\`c\\` \\\\');
  });
});
