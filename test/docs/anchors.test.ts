import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// Every `](#…)` and `](file.md#…)` link in the Markdown docs lands on a heading, by the anchors
// GitHub gives headings: lower case, punctuation such as `/`, `.`, `(`, `)` dropped, spaces to `-`,
// a repeated heading numbered `-1`, `-2`. (An anchor written by hand, `go-no-go` for "go/no-go",
// renders as a dead link.)

const ROOT = path.resolve(import.meta.dirname, '../..');

function markdownFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name.startsWith('.') ? [] : markdownFiles(rel);
    return e.name.endsWith('.md') ? [rel] : [];
  });
}

/** GitHub's anchor for a heading's text (github-slugger's rule). */
function slug(heading: string): string {
  const text = heading
    .replace(/`([^`]*)`/g, '$1')
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/(\*\*|__|\*)/g, '');
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a Markdown file's headings, fenced code skipped. */
function anchorsOf(file: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of readFileSync(path.join(ROOT, file), 'utf8').split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (m === null) continue;
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

describe('anchors in the docs', () => {
  it('follows GitHub: punctuation dropped, repeats numbered', () => {
    expect(slug('The 30-day report and the go/no-go scorecard')).toBe('the-30-day-report-and-the-gono-go-scorecard');
    expect(slug('`vigil run-once` (for CI)')).toBe('vigil-run-once-for-ci');
    expect(slug('Node.js 20: what_is new?')).toBe('nodejs-20-what_is-new');
  });

  it('every link to an anchor lands on a heading', () => {
    const files = ['README.md', 'CONTRIBUTING.md', ...markdownFiles('docs'), 'grafana/README.md'];
    const cache = new Map<string, Set<string>>();
    const anchors = (file: string) => {
      let a = cache.get(file);
      if (a === undefined) {
        a = anchorsOf(file);
        cache.set(file, a);
      }
      return a;
    };
    const dead: string[] = [];
    let checked = 0;
    for (const file of files) {
      const text = readFileSync(path.join(ROOT, file), 'utf8').replace(/^\s*```[\s\S]*?^\s*```/gm, '');
      for (const m of text.matchAll(/\]\(([^)\s#]*)#([^)\s]+)\)/g)) {
        const [target, anchor] = [m[1]!, m[2]!];
        if (/^[a-z]+:/i.test(target)) continue;
        const into = target === '' ? file : path.normalize(path.join(path.dirname(file), target));
        if (!into.endsWith('.md')) continue;
        checked++;
        if (!anchors(into).has(decodeURIComponent(anchor))) dead.push(`${file}: ](${target}#${anchor})`);
      }
    }
    expect(checked).toBeGreaterThan(10);
    expect(dead).toEqual([]);
  });
});
