/** What `vigil --help` prints: every command, its options and its exit codes. */
export const USAGE = `usage: vigil [command] [options]

commands:
  (none)                      start the service (config/ and probes/ under the working directory)
      --pid-file FILE         refuse to start while FILE names a live vigil (also VIGIL_PID_FILE)
  check-config                validate the config and probe definitions without starting
  run-once PROBE-ID           run one probe now with its real prober and print the result
      --json                  print the run as JSON instead
  token                       print a new API token and its auth.tokens entry
      --name NAME             the token's name (default ops)
      --role ROLE             viewer, operator or admin (default operator)

options of check-config and run-once:
  --config FILE               merge FILE over config/ (as VIGIL_CONFIG=FILE does)

  -h, --help                  print this and exit
  -V, --version               print vigil's version and exit

environment: VIGIL_ENV, VIGIL_CONFIG, HOST, PORT, VIGIL_LOCATION, and the \${NAME} references of the config.
exit codes: 0 ok (run-once: the probe passed), 1 failed (run-once: the probe failed; check-config: the
config is invalid), 2 bad arguments (or, at start and in run-once, an invalid config or unknown probe),
3 the database cannot be used.
`;
