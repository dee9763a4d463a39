// ws-auth.test.mjs: token expiry on a live WebSocket. With [auth] access_ttl = 10, a
// connection whose token expired is closed with 4001 once 60 s passed after exp
// without an "auth" frame; a connection that sent a newer token of the same user in
// time stays open. (Takes a little over 70 s: the 60 s grace is the contract.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, registerAndLogin, uniqueName, wsConnect } from './lib/harness.mjs';

let server, alice;

before(async () => {
    server = await startServer({ config: '[auth]\naccess_ttl = 10\n[websocket]\nheartbeat_ms = 1000\n' });
    alice = await registerAndLogin(server, uniqueName('alice'));
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

function expOf(token) {
    return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp;
}

test('an expired token not replaced closes with 4001 after the grace; a replaced one stays', { timeout: 120000 }, async () => {
    const exp = expOf(alice.access_token);
    const stale = await wsConnect(server, alice.access_token);
    const fresh = await wsConnect(server, alice.access_token);
    await Promise.all([stale.next('hello'), fresh.next('hello')]);

    // A newer token, a few seconds later, so its exp is later than the first one's.
    await new Promise((r) => setTimeout(r, 4000));
    const login = await api(server).post('/v1/auth/login', { username: alice.username, password: alice.password });
    const newExp = expOf(login.json.access_token);
    assert.ok(newExp > exp + 2, `${newExp} vs ${exp}`);
    fresh.send({ type: 'auth', access_token: login.json.access_token });
    const ok = await fresh.next('auth.ok');
    assert.equal(ok.expires_at, newExp * 1000);

    const { code } = await stale.closed;
    const closedAt = Date.now();
    assert.equal(code, 4001);
    assert.ok(closedAt >= (exp + 60) * 1000, `closed ${closedAt - (exp + 60) * 1000} ms early`);
    assert.ok(closedAt <= (exp + 60) * 1000 + 5000, `closed ${closedAt - (exp + 60) * 1000} ms late`);

    // the connection that replaced its token is alive
    fresh.send({ type: 'ping' });
    await fresh.next('pong');
    await fresh.close();
});
