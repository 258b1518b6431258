// Launch checklist: "the system holds 10x load with p95 < 5 s".
// Run by vigil's k6 probe (see probes/examples/k6.yaml), or by hand:
//   k6 run -e TARGET=https://api.example.com -e MULTIPLIER=10 probes/load/api-10x.js
// Needs k6 >= 0.50.
//
// __ENV inputs (set with `env:` in the probe definition):
//   TARGET      base URL of the API, required
//   MULTIPLIER  load relative to normal traffic (default 10)
//   BASE_VUS    virtual users that make normal traffic (default 5): the peak is BASE_VUS × MULTIPLIER
//   PATHS       comma-separated paths to request (default /health)
//   RAMP, HOLD  how long to ramp up to the peak and how long to hold it (default 1m, 5m)
//   THINK_S     pause between a user's requests in seconds (default 1)

import { check, sleep } from 'k6';
import http from 'k6/http';

const TARGET = (__ENV.TARGET || '').replace(/\/+$/, '');
const MULTIPLIER = Number(__ENV.MULTIPLIER || '10');
const BASE_VUS = Number(__ENV.BASE_VUS || '5');
const PATHS = (__ENV.PATHS || '/health')
  .split(',')
  .map((p) => p.trim())
  .filter((p) => p !== '');
const THINK_S = Number(__ENV.THINK_S || '1');

// Failing here (in the init context) makes k6 exit 107: vigil reports it as SCRIPT_ERROR with this text.
if (!/^https?:\/\/\S+$/.test(TARGET)) {
  throw new Error(`TARGET must be an http(s) URL, got "${TARGET}": set env.TARGET in the probe definition`);
}
if (!(MULTIPLIER > 0) || !(BASE_VUS > 0)) {
  throw new Error(`MULTIPLIER and BASE_VUS must be positive numbers, got ${__ENV.MULTIPLIER} and ${__ENV.BASE_VUS}`);
}

const PEAK_VUS = Math.max(1, Math.round(BASE_VUS * MULTIPLIER));

export const options = {
  scenarios: {
    ramp_to_peak: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: __ENV.RAMP || '1m', target: PEAK_VUS },
        { duration: __ENV.HOLD || '5m', target: PEAK_VUS },
        { duration: '30s', target: 0 },
      ],
      gracefulRampDown: '10s',
    },
  },
  // k6 exits 99 when one is crossed; vigil then names each crossed threshold and its value.
  thresholds: {
    http_req_duration: ['p(95)<5000'],
    http_req_failed: ['rate<0.05'],
  },
  // p(99) in the export lets vigil report p99_ms too.
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  discardResponseBodies: true,
  userAgent: 'vigil-k6/0.1 (launch readiness load test)',
};

export default function () {
  for (const path of PATHS) {
    const res = http.get(`${TARGET}${path}`, { tags: { name: path }, timeout: '30s' });
    check(res, {
      'status is 2xx': (r) => r.status >= 200 && r.status < 300,
      'answered within 5s': (r) => r.timings.duration < 5000,
    });
  }
  sleep(THINK_S);
}
