// The OpenID provider of the lqx SSO tests: panva/oidc-provider (a certified implementation)
// with the device flow, two public native clients and a few users with `groups` claims.
//
//   node provider.mjs KEYS_FILE [PORT] [--rotate]
//
// Listens on 127.0.0.1:PORT (0: a free port) and prints `ready <issuer>` once it serves;
// over HTTPS when OIDC_TLS_DIR names a directory with cert.pem and key.pem.
// Signing keys live in KEYS_FILE (created with one RS256 key when missing), so a restart on
// the same port keeps the issuer and keys; `--rotate` first puts a new key in front (the
// new signer), keeping the old one published, as a provider rotating its keys does.
// The login form accepts any password (the provider's development interactions): the tests
// drive its pages over HTTP like a user would (drive.mjs).
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { randomUUID } from 'node:crypto';
import * as jose from 'jose';
import Provider from 'oidc-provider';

const [keysFile, portArg = '0', ...flags] = process.argv.slice(2);
if (!keysFile) {
  console.error('usage: node provider.mjs KEYS_FILE [PORT] [--rotate]');
  process.exit(2);
}

async function newKey() {
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { ...jwk, kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

let keys = existsSync(keysFile) ? JSON.parse(readFileSync(keysFile, 'utf8')) : [];
if (keys.length === 0 || flags.includes('--rotate')) keys = [await newKey(), ...keys];
writeFileSync(keysFile, JSON.stringify(keys), { mode: 0o600 });

// Users: login name -> claims. `admin` collides with lqx's local bootstrap admin on purpose.
const USERS = {
  alice: { email: 'alice@example.com', groups: ['lqx-admins', 'staff'] },
  bob: { email: 'bob@example.com', groups: ['lqx-operators'] },
  carol: { email: 'carol@example.com', groups: ['staff'] },
  admin: { email: 'impostor@example.com', groups: ['lqx-viewers'] },
};

const nativeClient = (id) => ({
  client_id: id,
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'authorization_code'],
  response_types: ['code'],
  // RFC 8252 7.3: any port on the loopback address.
  redirect_uris: ['http://127.0.0.1/callback'],
});

// OIDC_TLS_DIR (cert.pem, key.pem): serve HTTPS, as a provider behind a company CA does.
const tlsDir = process.env.OIDC_TLS_DIR;
const server = tlsDir
  ? createHttpsServer({ cert: readFileSync(`${tlsDir}/cert.pem`), key: readFileSync(`${tlsDir}/key.pem`) })
  : createHttpServer();
await new Promise((ok) => server.listen(Number(portArg), '127.0.0.1', ok));
const issuer = `${tlsDir ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [nativeClient('lqx-cli'), nativeClient('other-client')],
  jwks: { keys },
  features: {
    deviceFlow: { enabled: true },
    devInteractions: { enabled: true },
  },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username'],
    email: ['email'],
    groups: ['groups'],
  },
  // Scope claims go into the ID token, which is what lqx verifies.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  ttl: { DeviceCode: 120, IdToken: 600, AccessToken: 600 },
  async findAccount(ctx, id) {
    const user = USERS[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, ...user };
      },
    };
  },
});
// RFC 8628's default polling interval is 5 s; the tests' provider asks for 1 s (clients must
// use the interval the provider gives).
provider.on('device_authorization.success', (ctx, body) => { body.interval = 1; });
server.on('request', provider.callback());
console.log(`ready ${issuer}`);
