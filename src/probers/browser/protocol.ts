/**
 * What the browser prober (in vigil) and its runner (a child process) say to each other: the job
 * goes in on stdin as one JSON document, lines of JSON come back on stdout (a step starting, then
 * the outcome). No secret travels in argv or the environment, where `ps` would show it.
 */

/** Marks a runner's command line, so a stale pid file's group is only killed when it is one. */
export const RUNNER_MARK = '--vigil-browser-runner';

/** One browser run, as the prober hands it to the runner. */
export interface BrowserJob {
  /** Absolute path of the user's script module. */
  script: string;
  /** Chromium to launch; the runner looks for one (CHROMIUM_PATH, /usr/bin/chromium, chromium-browser) when absent. */
  chromium?: string;
  viewport?: { width: number; height: number };
  /** The definition's `env:` map, `${…}` values interpolated: the script's `ctx.env`. */
  env: Record<string, string>;
  /** The env values that hold secrets: removed, in every form, from everything the runner writes. */
  secrets: string[];
  /** Playwright's own action and navigation timeout, below the run's deadline so a failure still leaves a screenshot. */
  actionTimeoutMs: number;
  /** Where a failed run's screenshot and trace go; none are kept when absent. */
  artifactsDir?: string;
  /** Counts over which the run will fail: the runner keeps artifacts for those runs too. */
  keepOver: { consoleErrors: number; failedRequests: number };
  /** Where the runner records its group while it lives (a PidRecord), so a crashed vigil's browsers can be found. */
  pidFile?: string;
}

/** What a pid file of a running browser says. */
export interface PidRecord {
  /** The runner's pid, which is its group's id (it was spawned detached). */
  pgid: number;
  /** The vigil that started it. */
  parent: number;
}

/** Web Vitals of the page's last navigation, when the browser reported them. */
export interface Vitals {
  lcpMs?: number;
  cls?: number;
  ttfbMs?: number;
}

/** What a run measured and how it ended. */
export interface BrowserOutcome {
  ok: boolean;
  /** BROWSER (no Chromium, launch failed), SCRIPT (a module without a default function, a throw outside steps), STEP. */
  code?: 'BROWSER' | 'SCRIPT' | 'STEP';
  /** The first line of the error, secrets removed. */
  error?: string;
  /** The step that threw, innermost first named. */
  failedStep?: string;
  /** Step name → milliseconds, in the order they ran. */
  steps: Record<string, number>;
  durationMs: number;
  vitals: Vitals;
  /** Console errors and uncaught exceptions: the first few, and how many in all. */
  consoleErrors: string[];
  consoleErrorCount: number;
  /** Requests that failed on the network or got a 5xx: the first few, and how many in all. */
  failedRequests: string[];
  failedRequestCount: number;
  /** Files saved in the job's artifactsDir. */
  artifacts: string[];
}

/** One line of the runner's stdout. */
export type RunnerMessage = { step: string } | { outcome: BrowserOutcome };
