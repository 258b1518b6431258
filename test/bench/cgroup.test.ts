import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type CpuCap, cpuCap, quotaUs } from '../../bench/cgroup.js';

// The cluster bench's CPU quota (bench/cgroup.ts): the files it writes in either cgroup version,
// checked in a folder laid out like each; and, where this process may make cgroups (root, as in CI),
// a real group that holds a busy process to its share.

let dir: string | undefined;
afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});
const tmp = () => {
  dir = mkdtempSync(path.join(tmpdir(), 'vigil-cgroup-'));
  return dir;
};
const made = (cap: ReturnType<typeof cpuCap>): CpuCap => {
  if ('unavailable' in cap) throw new Error(cap.unavailable);
  return cap;
};

describe('cpuCap', () => {
  it('takes a share of a core as µs a 100 ms period, at least the 1 ms the kernel takes', () => {
    expect(quotaUs(0.25)).toBe(25_000);
    expect(quotaUs(1.5)).toBe(150_000);
    expect(quotaUs(0.001)).toBe(1000);
    expect(() => quotaUs(0)).toThrow(/positive share/);
    expect(() => quotaUs(Number.NaN)).toThrow(/positive share/);
  });

  it('writes cgroup v1 quota and period in a group of its own under the cpu controller', () => {
    const root = tmp();
    mkdirSync(path.join(root, 'cpu'));
    writeFileSync(path.join(root, 'cpu', 'cpu.cfs_quota_us'), '-1');
    const cap = made(cpuCap('writer-a', 0.25, root));
    expect(cap.dir).toBe(path.join(root, 'cpu', 'writer-a'));
    expect(readFileSync(path.join(cap.dir, 'cpu.cfs_quota_us'), 'utf8')).toBe('25000');
    expect(readFileSync(path.join(cap.dir, 'cpu.cfs_period_us'), 'utf8')).toBe('100000');
    cap.add(4242);
    expect(readFileSync(path.join(cap.dir, 'cgroup.procs'), 'utf8')).toBe('4242');
    writeFileSync(path.join(cap.dir, 'cpu.stat'), 'nr_periods 40\nnr_throttled 30\nthrottled_time 123\n');
    expect(cap.throttled()).toEqual({ periods: 40, throttled: 30 });
  });

  it("writes cgroup v2's cpu.max, enabling the cpu controller for the root's children first", () => {
    const root = tmp();
    writeFileSync(path.join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    writeFileSync(path.join(root, 'cgroup.subtree_control'), 'memory\n');
    const cap = made(cpuCap('writer-b', 0.4, root));
    expect(cap.dir).toBe(path.join(root, 'writer-b'));
    expect(readFileSync(path.join(root, 'cgroup.subtree_control'), 'utf8')).toBe('+cpu');
    expect(readFileSync(path.join(cap.dir, 'cpu.max'), 'utf8')).toBe('40000 100000');
  });

  it('says why where there is no cpu controller to write', () => {
    const v2 = tmp();
    writeFileSync(path.join(v2, 'cgroup.controllers'), 'memory pids\n');
    const none = cpuCap('x', 0.25, v2);
    expect(none).toEqual({ unavailable: expect.stringMatching(/cpu controller is not available in cgroup v2/) });
    expect(existsSync(path.join(v2, 'x'))).toBe(false);
    rmSync(v2, { recursive: true });
    dir = undefined;
    expect(cpuCap('x', 0.25, tmp())).toEqual({ unavailable: expect.stringMatching(/^no cgroup cpu controller under /) });
  });
});

// Only where the kernel's cgroup filesystem takes a new group from this process.
const real = cpuCap(`vigil-test-${process.pid}`, 0.1);
const usable = !('unavailable' in real);
if (usable) real.remove();

describe.runIf(usable)('cpuCap on this kernel', () => {
  it('holds a busy process to its share, and is gone once removed', async () => {
    const cap = made(cpuCap(`vigil-test-${process.pid}-busy`, 0.1));
    const busy = spawn(process.execPath, ['-e', 'const end = Date.now() + 1500; while (Date.now() < end);']);
    try {
      cap.add(busy.pid!);
      expect(readFileSync(`/proc/${busy.pid}/cgroup`, 'utf8')).toContain(`vigil-test-${process.pid}-busy`);
      await new Promise((resolve) => busy.once('exit', resolve));
      // Busy for 1.5 s on a tenth of a core: it used up its quota in nearly every period it ran in.
      const { periods, throttled } = cap.throttled();
      expect(periods).toBeGreaterThan(5);
      expect(throttled / periods).toBeGreaterThan(0.8);
    } finally {
      busy.kill('SIGKILL');
      if (busy.exitCode === null && busy.signalCode === null) await new Promise((resolve) => busy.once('exit', resolve));
      cap.remove();
    }
    expect(existsSync(cap.dir)).toBe(false);
  });
});
