// A real OpenID Connect provider (panva/oidc-provider, an OpenID Certified
// implementation from the npm registry) configured for the end-to-end
// tests: the tests drive its own sign-in pages and token endpoint.
//
// Environment:
//   PORT      the port to listen on (issuer http://127.0.0.1:PORT)
//   CLIENTS   JSON array of client metadata (client_id, client_secret,
//             redirect_uris, grant_types, ...)
//   ACCOUNTS  JSON object: account id -> claims (email, name, groups, ...)
//   AUDIENCE  the API identifier client-credentials tokens are issued for
//   ACCESS_TOKEN_ALG  RS256 (default) or ES256, for those access tokens
//
// Access tokens for AUDIENCE are JWTs (RFC 9068) carrying `azp` and the
// account's `groups`, as Auth0 issues them for an API. It prints
// "listening <issuer>" once it accepts connections.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const clients = JSON.parse(process.env.CLIENTS || '[]');
const accounts = JSON.parse(process.env.ACCOUNTS || '{}');
const audience = process.env.AUDIENCE || 'https://api.example.test';

const accessTokenAlg = process.env.ACCESS_TOKEN_ALG || 'RS256';

// Fresh keys and kids each start: a restart is a key rotation.
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const signing = [
  { ...rsa.export({ format: 'jwk' }), kid: `rsa-${randomUUID()}`, use: 'sig', alg: 'RS256' },
  { ...ec.export({ format: 'jwk' }), kid: `ec-${randomUUID()}`, use: 'sig', alg: 'ES256' },
];

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: signing },
  pkce: { required: () => true },
  // The tests read the ID token's claims without a user-info call.
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access', 'api:read'],
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== audience) throw new Error('unknown resource');
        return { scope: 'api:read', audience, accessTokenFormat: 'jwt', jwt: { sign: { alg: accessTokenAlg } } };
      },
    },
  },
  extraTokenClaims: async (ctx, token) => {
    const claims = { azp: token.clientId };
    const account = token.accountId && accounts[token.accountId];
    if (account && account.groups) claims.groups = account.groups;
    return claims;
  },
  findAccount: async (ctx, sub) => {
    if (!accounts[sub]) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...accounts[sub] }) };
  },
  ttl: { AccessToken: 300, ClientCredentials: 300, IdToken: 300, AuthorizationCode: 60, Interaction: 600, Session: 600, Grant: 600 },
});

provider.on('server_error', (ctx, err) => console.error('server_error', err));
const server = provider.listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
