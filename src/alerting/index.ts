export { type Alerting, type AlertingOptions, createAlerting, incidentKey, viewOf } from './engine.js';
export { advance, type EscalationPolicy, type EscalationState, resolveTargets, startEscalation } from './escalation.js';
export { type MaintenanceWindow, matches, type Target, type WindowTimes, windowTimes } from './matchers.js';
export { type AlertConfig, evaluate, flapShare, isFlapping, type RunPoint, type Verdict } from './rules.js';
export { type AlertFigures, type AlertSnapshot, createAlertSnapshot } from './snapshot.js';
