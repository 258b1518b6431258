import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const OPENSSL = '/usr/bin/openssl';
const DAY = 86_400_000;

/** A certificate and its private key, PEM; fits `tls.createServer` options as it is. */
export interface TestCert {
  /** The certificate followed by the intermediates a server should present with it (none for a CA or a self-signed one). */
  cert: string;
  key: string;
}

/** What a leaf looks like; validity defaults to 90 days from now. */
export interface LeafOptions {
  cn: string;
  /** SAN entries in openssl syntax (`DNS:api.vigil.test`, `IP:127.0.0.1`); default `DNS:<cn>`. */
  san?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** What the certificate is for (extendedKeyUsage): a TLS server (the default) or a client (mTLS). */
  usage?: 'server' | 'client';
}

/** A throwaway PKI in a temp dir: a root CA, ways to issue from it, and `dispose()` to remove it. */
export interface TestPki {
  root: TestCert;
  /** An intermediate CA under `root`, valid for the given window (default ten years). */
  intermediate(cn: string, window?: { notBefore?: Date; notAfter?: Date }): TestCert;
  /** A leaf signed by `issuer` (default: the root). */
  leaf(opts: LeafOptions, issuer?: TestCert): TestCert;
  /** A leaf that signs itself. */
  selfSigned(opts: LeafOptions): TestCert;
  dispose(): void;
}

/** Days from now, as a Date (negative for the past). */
export function daysFromNow(days: number): Date {
  return new Date(Date.now() + days * DAY);
}

/**
 * Builds a PKI with the openssl CLI. OpenSSL 3.0 has no `x509 -not_before`, so certificates with
 * explicit windows (expired, not yet valid) are issued with `openssl ca -startdate/-enddate`.
 */
export function createPki(name = 'Vigil Test'): TestPki {
  const dir = mkdtempSync(path.join(tmpdir(), 'vigil-pki-'));
  let n = 0;
  const file = (stem: string) => path.join(dir, `${stem}-${++n}`);
  const run = (...args: string[]) => execFileSync(OPENSSL, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });

  mkdirSync(path.join(dir, 'issued'));
  writeFileSync(path.join(dir, 'index.txt'), '');
  writeFileSync(path.join(dir, 'serial'), '1000\n');
  const conf = path.join(dir, 'ca.cnf');
  writeFileSync(
    conf,
    [
      '[ca]',
      'default_ca = test_ca',
      '[test_ca]',
      `dir = ${dir}`,
      'database = $dir/index.txt',
      'serial = $dir/serial',
      'new_certs_dir = $dir/issued',
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      'copy_extensions = none',
      '[any]',
      'organizationName = optional',
      'commonName = supplied',
      '',
    ].join('\n'),
  );

  const newKeyAndCsr = (subject: string) => {
    const key = `${file('key')}.pem`;
    const csr = `${file('csr')}.pem`;
    run(
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      csr,
      '-subj',
      subject,
    );
    return { key, csr };
  };

  const sign = (
    csr: string,
    issuer: { certFile: string; keyFile: string } | 'self',
    extensions: string[],
    window: { notBefore?: Date; notAfter?: Date },
    key: string,
  ) => {
    const out = `${file('cert')}.pem`;
    const ext = `${file('ext')}.cnf`;
    writeFileSync(ext, `[ext]\n${extensions.join('\n')}\n`);
    const who = issuer === 'self' ? ['-selfsign', '-keyfile', key] : ['-cert', issuer.certFile, '-keyfile', issuer.keyFile];
    run(
      'ca',
      '-batch',
      '-notext',
      '-config',
      conf,
      ...who,
      '-in',
      csr,
      '-out',
      out,
      '-extfile',
      ext,
      '-extensions',
      'ext',
      '-startdate',
      asn1Time(window.notBefore ?? daysFromNow(-1)),
      '-enddate',
      asn1Time(window.notAfter ?? daysFromNow(90)),
    );
    return out;
  };

  const files = new Map<TestCert, { certFile: string; keyFile: string }>();
  const load = (certFile: string, keyFile: string, parents: TestCert[] = []): TestCert => {
    const cert = [readFileSync(certFile, 'utf8'), ...parents.map((p) => p.cert)].join('');
    const tc = { cert, key: readFileSync(keyFile, 'utf8') };
    files.set(tc, { certFile, keyFile });
    return tc;
  };
  const leafExtensions = (opts: LeafOptions) => [
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature',
    `extendedKeyUsage = ${opts.usage === 'client' ? 'clientAuth' : 'serverAuth'}`,
    `subjectAltName = ${(opts.san ?? [`DNS:${opts.cn}`]).join(', ')}`,
  ];

  const rootReq = newKeyAndCsr(`/O=${name}/CN=${name} Root CA`);
  const rootFile = sign(
    rootReq.csr,
    'self',
    ['basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign', 'subjectKeyIdentifier = hash'],
    { notAfter: daysFromNow(3650) },
    rootReq.key,
  );
  const root = load(rootFile, rootReq.key);
  const issuerFiles = (c: TestCert) => {
    const f = files.get(c);
    if (!f) throw new Error('not a certificate of this PKI');
    return f;
  };

  return {
    root,
    intermediate(cn, window = { notAfter: daysFromNow(3650) }) {
      const req = newKeyAndCsr(`/O=${name}/CN=${cn}`);
      const out = sign(
        req.csr,
        issuerFiles(root),
        [
          'basicConstraints = critical, CA:TRUE, pathlen:0',
          'keyUsage = critical, keyCertSign, cRLSign',
          'subjectKeyIdentifier = hash',
          'authorityKeyIdentifier = keyid',
        ],
        window,
        req.key,
      );
      return load(out, req.key);
    },
    leaf(opts, issuer = root) {
      const req = newKeyAndCsr(`/O=${name}/CN=${opts.cn}`);
      const out = sign(req.csr, issuerFiles(issuer), leafExtensions(opts), opts, req.key);
      // A server presents its leaf and the intermediates, never the root.
      return load(out, req.key, issuer === root ? [] : [issuer]);
    },
    selfSigned(opts) {
      const req = newKeyAndCsr(`/O=${name}/CN=${opts.cn}`);
      return load(sign(req.csr, 'self', leafExtensions(opts), opts, req.key), req.key);
    },
    dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `openssl ca` dates: YYYYMMDDHHMMSSZ, UTC. */
function asn1Time(d: Date): string {
  return `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}
