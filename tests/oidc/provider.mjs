// A real OpenID Provider for the tests (the npm package oidc-provider, not written here):
// `node provider.mjs <port> <redirect_uri>` serves issuer http://localhost:<port> with one
// client (static secret, sent in the body) and oidc-provider's development login and consent
// pages. Prints "ready <issuer>" once it listens. Used by tests/browser.rs.
import http from 'node:http';
import Provider from 'oidc-provider';

const [port, redirectUri] = process.argv.slice(2);
const issuer = `http://localhost:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'actix-apple-music-test',
    client_secret: 'test-secret-not-for-production',
    redirect_uris: [redirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@oidc.test`, email_verified: true };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  // Put the scope's claims (email) in the id_token, as Apple does, not only in userinfo.
  conformIdTokenClaims: false,
});
provider.proxy = false;

// `localhost` may resolve to either loopback address: listen on both, and only on loopback.
let listening = 0;
for (const host of ['127.0.0.1', '::1']) {
  http.createServer(provider.callback()).listen(Number(port), host, () => {
    listening += 1;
    if (listening === 2) { console.log(`ready ${issuer}`); }
  }).on('error', (e) => {
    if (host === '::1') { listening += 1; if (listening === 2) { console.log(`ready ${issuer}`); } return; }
    throw e;
  });
}
