import { spawn, ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVERS_FILE, Server } from './tests/fixtures';

// Starts the release server once per backend on a fresh database, the way a person would (scripts/run
// does the same), and reads the URL and the one-time setup link from what it prints.
function start(name: string, databaseUrl: string, dir: string): Promise<{ child: ChildProcess; server: Server }> {
  const bin = process.env.LICENTIA_SERVER_BIN;
  if (!bin) throw new Error('LICENTIA_SERVER_BIN is not set: run the tests with scripts/test');
  const child = spawn(bin, ['serve'], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      LICENTIA_LISTEN: '127.0.0.1:0',
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

  const children: ChildProcess[] = [];
  const servers: Record<string, Server> = {};
  for (const [name, url] of Object.entries(backends)) {
    const { child, server } = await start(name, url, dir);
    children.push(child);
    // The vendor's root key, as the vendor ships it inside its application.
    const root = join(dir, `${name}-root.json`);
    writeFileSync(root, await (await fetch(`${server.url}/.well-known/licentia-root.json`)).text());
    servers[name] = { ...server, root };
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
