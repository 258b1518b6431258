export { type Badge, type BadgeDeps, type BadgeKind, buildBadge, renderBadgeSvg } from './badge.js';
export { buildReport, PERCENTILES_NOTE, type ReportDeps, type ReportQuery, reportWindow, targetsOf } from './build.js';
export { escapeHtml, pageCsp } from './format.js';
export { renderReportHtml } from './html.js';
export { renderReportMarkdown } from './markdown.js';
export { renderNotFoundPage } from './page-kit.js';
export { buildProbePage, type ProbePage, type ProbePageDeps, renderProbePage } from './probe-page.js';
export {
  buildPublicStatus,
  PUBLIC_DAYS,
  type PublicStatus,
  type PublicStatusDeps,
  publicProbeIds,
  renderPublicStatus,
  type StatusPageConfig,
} from './public-status.js';
export { CHECKLIST, type ChecklistItemId, type ReportConfig, ReportConfigSchema } from './schema.js';
export { type AlertingProbe, type ScorecardSetup, scorecard, setupOf } from './scorecard.js';
export { buildStatusPage, type StatusDeps } from './status.js';
export { renderStatusPage } from './status-page.js';
export type { RenderedPage, Report, Scorecard, StatusPage } from './types.js';
