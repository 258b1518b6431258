export { ConfigError, type LoadedConfig, type LoadOptions, loadConfig } from './load.js';
export { redact, secretsIn } from './redact.js';
export { LIVE, RESTART_ONLY, restartOnlyChanges } from './reload.js';
export { ConfigSchema, type ServiceConfig } from './schema.js';
export { createSecretBook, type SecretBook } from './secrets.js';
export { createReloader, type ReloadResult, type ReloaderDeps } from './reloader.js';
