// auth-two-nodes.test.mjs: two chatd processes on one PostgreSQL database, as two nodes
// would be: they sign with one key (the one kept in the database, made by whichever
// started first), a user made on one logs in on the other, a refresh token issued by
// one rotates on the other, and the same refresh token presented to both at once
// rotates once: the other presentation is a reuse and revokes the family, as on one
// node. Runs on PostgreSQL only (CHATD_TEST_ENGINE=pg).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as jose from 'jose';
import { startServer, api, registerAndLogin, uniqueName, tmpDir, assertApiError, engine } from './lib/harness.mjs';
import { databaseFor } from './lib/engine.mjs';

const PASSWORD = 'Two-Nodes-Passw0rd-9';
const RACES = 8;
const skip = engine !== 'pg' && 'needs PostgreSQL: two nodes share one database';
let a;
let b;

before(async () => {
    if (skip)
        return;
    const url = await databaseFor(tmpDir());
    const config = `[database]\nurl = ${url}\n`;
    // Both first starts at once: one key is made and kept, the other node reads it.
    [a, b] = await Promise.all([startServer({ config }), startServer({ config })]);
});

after(async () => {
    for (const s of [a, b])
        if (s && s.exitStatus === null)
            await s.stop();
});

const refresh = (srv, token) => api(srv).post('/v1/auth/refresh', { refresh_token: token });

test('both nodes serve one JWKS, and a user of one logs in on the other', { skip }, async () => {
    const ka = (await api(a).get('/.well-known/jwks.json')).json;
    const kb = (await api(b).get('/.well-known/jwks.json')).json;
    assert.equal(ka.keys.length, 1);
    assert.deepEqual(ka, kb);

    const u = await registerAndLogin(a, uniqueName('na'), PASSWORD);
    const l = await api(b).post('/v1/auth/login', { username: u.username, password: PASSWORD });
    assert.equal(l.status, 200, l.text);
    assert.deepEqual(l.json.user, u.user);
    // a token signed by one node verifies with the other's JWKS
    const keys = jose.createLocalJWKSet(kb);
    await jose.jwtVerify(u.access_token, keys);
    // a name taken on one node is taken on the other
    assertApiError(await api(b).post('/v1/auth/register', { username: u.username, password: PASSWORD }),
        409, 'conflict');
});

test('a refresh token of one node rotates on the other, once', { skip }, async () => {
    const u = await registerAndLogin(a, uniqueName('nr'), PASSWORD);
    const r1 = await refresh(b, u.refresh_token);
    assert.equal(r1.status, 200, r1.text);
    const r2 = await refresh(a, r1.json.refresh_token);
    assert.equal(r2.status, 200, r2.text);
    // the token spent on b, shown to a: a reuse, the family is revoked on both
    assertApiError(await refresh(a, u.refresh_token), 401, 'unauthorized');
    assertApiError(await refresh(b, r2.json.refresh_token), 401, 'unauthorized');
});

test('one refresh token presented to both nodes at once rotates once', { skip }, async () => {
    for (let i = 0; i < RACES; i++) {
        const u = await registerAndLogin(i % 2 ? a : b, uniqueName('nx'), PASSWORD);
        const [ra, rb] = await Promise.all([refresh(a, u.refresh_token), refresh(b, u.refresh_token)]);
        const statuses = [ra.status, rb.status].sort();
        assert.deepEqual(statuses, [200, 401], `${ra.text} / ${rb.text}`);
        const won = ra.status === 200 ? ra : rb;
        // the loser's presentation was a reuse: the winner's new token is revoked too
        assertApiError(await refresh(a, won.json.refresh_token), 401, 'unauthorized');
    }
});
