import { spawn, ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, Socket } from 'node:net';
import { SERVERS_FILE, Server } from './tests/fixtures';

/** A port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const port = (probe.address() as { port: number }).port;
      probe.close(() => resolve(port));
    });
  });
}

/** A real SMTP server keeping what it receives in a Maildir: aiosmtpd, from the test environment. */
async function startSmtpSink(maildir: string): Promise<{ child: ChildProcess; port: number }> {
  const python = process.env.LICENTIA_TEST_PYTHON ?? join(process.env.HOME ?? '', '.cache/licentia/venv/bin/python');
  const port = await freePort();
  const child = spawn(python, ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${port}`, '-c', 'aiosmtpd.handlers.Mailbox', maildir], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s: Socket = new Socket();
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
      s.connect(port, '127.0.0.1');
    });
    if (up) return { child, port };
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill();
  throw new Error(`the SMTP sink (${python} -m aiosmtpd) did not start`);
}

// Starts the release server once per backend on a fresh database, the way a person would (scripts/run
// does the same), and reads the URL and the one-time setup link from what it prints.
// It sends mail through the SMTP sink, so its public URL (where links point) is fixed up front.
async function start(name: string, databaseUrl: string, dir: string, smtpPort: number): Promise<{ child: ChildProcess; server: Server }> {
  const bin = process.env.LICENTIA_SERVER_BIN;
  if (!bin) throw new Error('LICENTIA_SERVER_BIN is not set: run the tests with scripts/test');
  const port = await freePort();
  const child = spawn(bin, ['serve'], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      LICENTIA_LISTEN: `127.0.0.1:${port}`,
      LICENTIA_PUBLIC_URL: `http://127.0.0.1:${port}`,
      LICENTIA_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
      LICENTIA_MAIL_FROM: 'Licentia <licences@vendor.test>',
      LICENTIA_MASTER_KEY_FILE: join(dir, `${name}-master.key`),
      RUST_LOG: process.env.RUST_LOG ?? 'warn',
      // The webhook journey's receiver listens on 127.0.0.1.
      LICENTIA_WEBHOOK_PRIVATE_ADDRESSES: 'true',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${name} server did not start:\n${out}`)), 30_000);
    child.on('exit', (code) => reject(new Error(`${name} server exited with ${code}:\n${out}`)));
    child.stdout!.on('data', (chunk) => {
      out += chunk.toString();
      const url = out.match(/running at (http:\/\/\S+?)\/? /)?.[1];
      const setupLink = out.match(/(http:\/\/\S+\/setup\/\S+)/)?.[1];
      if (url && setupLink) {
        clearTimeout(timer);
        resolve({ child, server: { url, setupLink } });
      }
    });
  });
}

export default async function globalSetup() {
  const dir = mkdtempSync(join(tmpdir(), 'licentia-e2e-'));
  const backends: Record<string, string> = { sqlite: `sqlite://${dir}/licentia.db` };
  if (process.env.LICENTIA_E2E_POSTGRES_URL) backends.postgres = process.env.LICENTIA_E2E_POSTGRES_URL;

  const maildir = join(dir, 'mail');
  const sink = await startSmtpSink(maildir);
  const children: ChildProcess[] = [sink.child];
  const servers: Record<string, Server> = {};
  for (const [name, url] of Object.entries(backends)) {
    const { child, server } = await start(name, url, dir, sink.port);
    children.push(child);
    // The vendor's root key, as the vendor ships it inside its application.
    const root = join(dir, `${name}-root.json`);
    writeFileSync(root, await (await fetch(`${server.url}/.well-known/licentia-root.json`)).text());
    servers[name] = { ...server, root, maildir };
  }
  writeFileSync(SERVERS_FILE, JSON.stringify(servers, null, 2));

  return async () => {
    for (const child of children) {
      child.removeAllListeners('exit');
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
    rmSync(SERVERS_FILE, { force: true });
  };
}
