// Verifies an activation code with Node's own crypto, independently of the Rust code: reads the
// JWKS from the server, picks the key named by the code's `kid`, checks the EdDSA signature over
// the JWS signing input. Prints the claims as JSON on success; exits 1 with a reason otherwise.
// Usage: node verify-jws.mjs <server-url> <compact-jws>
import { createPublicKey, verify } from 'node:crypto';

const [, , server, code] = process.argv;
const parts = code.split('.');
if (parts.length !== 3) {
  console.error('not a compact JWS');
  process.exit(1);
}
const [h, p, s] = parts;
const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
if (header.alg !== 'EdDSA') {
  console.error(`unexpected alg ${header.alg}`);
  process.exit(1);
}
const jwks = await (await fetch(`${server}/.well-known/jwks.json`)).json();
const jwk = jwks.keys.find((k) => k.kid === header.kid);
if (!jwk) {
  console.error(`no key ${header.kid} in the JWKS`);
  process.exit(1);
}
const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' });
const ok = verify(null, Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'));
if (!ok) {
  console.error('bad signature');
  process.exit(1);
}
process.stdout.write(Buffer.from(p, 'base64url').toString('utf8'));
