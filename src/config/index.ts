export { defaultBaseUrl, linksPointAtLoopback } from './base-url.js';
export { ConfigError, type LoadedConfig, type LoadOptions, loadConfig } from './load.js';
export { redact, secretsIn } from './redact.js';
export { LIVE, RESTART_ONLY, restartOnlyChanges } from './reload.js';
export { createReloader, type ReloaderDeps, type ReloadResult } from './reloader.js';
export { ConfigSchema, type ServiceConfig } from './schema.js';
export { createSecretBook, type SecretBook } from './secrets.js';
