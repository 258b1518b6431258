/**
 * A CPU quota for a group of the bench's processes, through the kernel's cgroup filesystem: cgroup
 * v2's `cpu.max`, or v1's `cpu.cfs_quota_us` where only v1's cpu controller is mounted. The cluster
 * phase holds each vigil instance to a share of a core, as if each ran on a host of its
 * own: on one small machine three unlimited writers and the database server take the cores from one
 * another, and their sum says nothing of whether the database lets writers write side by side.
 *
 * Needs root (or a delegated cgroup); where neither version is writable, `cpuCap` says why and the
 * bench prints that instead of the figure.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The period the quota is counted in, µs (the kernel's default). */
const PERIOD_US = 100_000;

export interface CpuCap {
  readonly dir: string;
  /** Moves a process (all its threads) into the group. */
  add(pid: number): void;
  /** Periods the group used up its quota in, and all periods it ran in, since it was made. */
  throttled(): { periods: number; throttled: number };
  /** Removes the group; its processes must have exited (or they move to the parent first). */
  remove(): void;
}

/** µs of CPU a period that `cores` is: what cgroup v2's `cpu.max` and v1's `cpu.cfs_quota_us` take. */
export function quotaUs(cores: number): number {
  if (!(cores > 0)) throw new Error(`cpu cap: expected a positive share of a core, got ${cores}`);
  // The kernel takes at least 1 ms a period.
  return Math.max(1000, Math.round(cores * PERIOD_US));
}

/**
 * A new group `name` held to `cores` (0.25: a quarter of one core), under `root` (the cgroup mount,
 * /sys/fs/cgroup); or why there can be none here.
 */
export function cpuCap(name: string, cores: number, root = '/sys/fs/cgroup'): CpuCap | { unavailable: string } {
  const quota = quotaUs(cores);
  try {
    if (existsSync(path.join(root, 'cgroup.controllers'))) return v2(path.join(root, name), root, quota);
    if (existsSync(path.join(root, 'cpu', 'cpu.cfs_quota_us'))) return v1(path.join(root, 'cpu', name), quota);
    return { unavailable: `no cgroup cpu controller under ${root}` };
  } catch (err) {
    return { unavailable: `cannot make a cgroup under ${root}: ${(err as Error).message}` };
  }
}

function v2(dir: string, root: string, quota: number): CpuCap {
  const controllers = readFileSync(path.join(root, 'cgroup.controllers'), 'utf8').split(/\s+/);
  if (!controllers.includes('cpu')) throw new Error('the cpu controller is not available in cgroup v2 here');
  const subtree = path.join(root, 'cgroup.subtree_control');
  if (!readFileSync(subtree, 'utf8').split(/\s+/).includes('cpu')) writeFileSync(subtree, '+cpu');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`);
  return group(dir, path.join(root, 'cgroup.procs'));
}

function v1(dir: string, quota: number): CpuCap {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
  writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), String(quota));
  return group(dir, path.join(path.dirname(dir), 'cgroup.procs'));
}

/** Both versions name the group's files and its cpu.stat counters alike. */
function group(dir: string, parentProcs: string): CpuCap {
  return {
    dir,
    // cgroup.procs takes one pid a write, and moves every thread of that process.
    add: (pid) => appendFileSync(path.join(dir, 'cgroup.procs'), String(pid)),
    throttled() {
      const stat = new Map(
        readFileSync(path.join(dir, 'cpu.stat'), 'utf8')
          .split('\n')
          .map((line) => line.split(' ') as [string, string]),
      );
      return { periods: Number(stat.get('nr_periods') ?? 0), throttled: Number(stat.get('nr_throttled') ?? 0) };
    },
    remove() {
      const procs = existsSync(path.join(dir, 'cgroup.procs')) ? readFileSync(path.join(dir, 'cgroup.procs'), 'utf8') : '';
      for (const pid of procs.split('\n').filter(Boolean)) {
        try {
          appendFileSync(parentProcs, pid);
        } catch {
          // Exited meanwhile.
        }
      }
      rmdirSync(dir);
    },
  };
}
