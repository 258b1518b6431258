export { type Alerting, type AlertingOptions, createAlerting, incidentKey, viewOf } from './engine.js';
export { type AlertConfig, evaluate, flapShare, isFlapping, type RunPoint, type Verdict } from './rules.js';
