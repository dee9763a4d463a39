// authz-sweep.test.mjs: every authenticated route and every client frame type, tried as
// someone who must be refused: no token, forged tokens (alg none, HS256 keyed with the
// public key, a signature by another RSA key), a genuinely expired token, and a valid
// user who is not a member of the room. Each is refused with the status the API names,
// and a non-member never receives anything of the room.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as jose from 'jose';
import {
    startServer, api, registerAndLogin, uniqueName, wsConnect, waitFor,
} from './lib/harness.mjs';

let server, http, alice, bob, mallory, room, msgSeq, subId;
let presenceRoute = false;  // GET /v1/presence is served by the presence module
const bad = {};   // name -> token that must be refused

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');

function claimsFor(user, iat, exp) {
    return {
        iss: 'chatd', aud: 'chatd', sub: String(user.user.id), name: user.username,
        iat, exp, jti: crypto.randomUUID(),
    };
}

before(async () => {
    server = await startServer();
    http = api(server);
    [alice, bob, mallory] = await Promise.all(['a', 'b', 'm'].map((p) => registerAndLogin(server, uniqueName(p))));
    const res = await http.post('/v1/rooms', { name: 'private', members: [bob.username] }, { token: alice.access_token });
    assert.equal(res.status, 201, res.text);
    room = res.json.room.id;
    const m = await http.post(`/v1/rooms/${room}/messages`, { body: 'secret', client_msg_id: 'c1' }, { token: alice.access_token });
    assert.equal(m.status, 201, m.text);
    msgSeq = m.json.message.seq;
    const sub = await http.post('/v1/push/subscriptions', {
        endpoint: 'https://push.example.com/ep/1',
        keys: {
            p256dh: 'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM',
            auth: 'tBHItJI5svbpez7KI4CCXg',
        },
    }, { token: alice.access_token });
    assert.equal(sub.status, 201, sub.text);
    subId = sub.json.id;

    // Forgeries, built against the server's real key id.
    const jwks = (await http.get('/.well-known/jwks.json')).json;
    const jwk = jwks.keys[0];
    const now = Math.floor(Date.now() / 1000);
    const claims = claimsFor(mallory, now, now + 600);
    bad.none = `${b64url({ alg: 'none', typ: 'JWT', kid: jwk.kid })}.${b64url(claims)}.`;
    const pubPem = crypto.createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    bad.hs256_pubkey = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: jwk.kid })
        .sign(new TextEncoder().encode(pubPem));
    const other = await jose.generateKeyPair('RS256');
    bad.other_rsa = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: jwk.kid })
        .sign(other.privateKey);
    // A tampered real token: mallory's token with alice's id in it.
    const [h, , s] = mallory.access_token.split('.');
    bad.tampered = `${h}.${b64url(claimsFor(alice, now, now + 600))}.${s}`;
    // Expired: signed with the server's own key (the key file is ours to read), past
    // the 60 s leeway. A control token from the same signer must be accepted, so the
    // refusal is about the expiry and nothing else.
    const realKey = crypto.createPrivateKey(readFileSync(path.join(server.dataDir, 'jwt.pem')));
    const sign = (c) => new jose.SignJWT(c).setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: 'JWT' }).sign(realKey);
    bad.expired = await sign(claimsFor(mallory, now - 1000, now - 120));
    const control = await sign(claimsFor(mallory, now, now + 600));
    const me = await http.get('/v1/me', { token: control });
    assert.equal(me.status, 200, `a token signed like the expired one but valid must pass: ${me.text}`);
    bad.garbage = 'not.a.token';
    const p = await http.get(`/v1/presence?user_ids=${alice.user.id}`, { token: alice.access_token });
    presenceRoute = p.status !== 404;
});

// Every route that needs a token, with a body that would be valid for a member.
function routes() {
    return [
        ['POST', '/v1/auth/logout', { refresh_token: alice.refresh_token }],
        ['GET', '/v1/me'],
        ['POST', '/v1/rooms', { name: 'x', members: [] }],
        ['GET', '/v1/rooms'],
        ['GET', `/v1/rooms/${room}`],
        ['POST', `/v1/rooms/${room}/members`, { username: mallory.username }],
        ['DELETE', `/v1/rooms/${room}/members/${bob.user.id}`],
        ['POST', '/v1/dm', { username: alice.username }],
        ['GET', `/v1/rooms/${room}/messages`],
        ['POST', `/v1/rooms/${room}/messages`, { body: 'intruder', client_msg_id: 'i1' }],
        ['POST', `/v1/rooms/${room}/read`, { seq: 1 }],
        ...(presenceRoute ? [['GET', `/v1/presence?user_ids=${alice.user.id}`]] : []),
        ['GET', '/v1/push/subscriptions'],
        ['POST', '/v1/push/subscriptions', { endpoint: 'https://push.example.com/x', keys: { p256dh: 'x', auth: 'y' } }],
        ['DELETE', `/v1/push/subscriptions/${subId}`],
        ['GET', '/v1/ws'],
    ];
}

function assertError(res, status, code, what) {
    assert.equal(res.status, status, `${what}: ${res.status} ${res.text}`);
    assert.equal(res.json?.error?.code, code, `${what}: ${res.text}`);
}

test('GET /v1/presence is served', async (t) => {
    if (!presenceRoute)
        t.skip('GET /v1/presence answers 404: the presence routes are not registered, so the sweep leaves them out');
});

test('every authenticated route refuses a missing, forged or expired token with 401', async () => {
    for (const [method, p, body] of routes()) {
        const res = await http.request(method, p, { body });
        assertError(res, 401, 'unauthorized', `${method} ${p} without a token`);
        for (const [name, token] of Object.entries(bad)) {
            const r = await http.request(method, p, { body, token });
            assertError(r, 401, 'unauthorized', `${method} ${p} with a ${name} token`);
        }
    }
    // The WebSocket upgrade, by header and by query parameter.
    for (const [name, token] of Object.entries(bad)) {
        for (const query of [false, true]) {
            await assert.rejects(wsConnect(server, token, { query }), (e) => e.status === 401,
                `upgrade with a ${name} token (${query ? 'query' : 'header'})`);
        }
    }
    // Nothing the forgeries tried happened.
    const hist = await http.get(`/v1/rooms/${room}/messages`, { token: alice.access_token });
    assert.deepEqual(hist.json.messages.map((m) => m.body), ['secret']);
    const show = await http.get(`/v1/rooms/${room}`, { token: alice.access_token });
    assert.deepEqual(show.json.room.members.map((m) => m.username).sort(), [alice.username, bob.username].sort());
});

test('a non-member is refused on every route of the room and learns nothing of it', async () => {
    const t = mallory.access_token;
    const cases = [
        ['GET', `/v1/rooms/${room}`, undefined, 403],
        ['POST', `/v1/rooms/${room}/members`, { username: mallory.username }, 403],
        ['POST', `/v1/rooms/${room}/members`, { username: 'nobody_here' }, 403],
        ['DELETE', `/v1/rooms/${room}/members/${bob.user.id}`, undefined, 403],
        ['DELETE', `/v1/rooms/${room}/members/${mallory.user.id}`, undefined, 403],
        ['GET', `/v1/rooms/${room}/messages`, undefined, 403],
        ['GET', `/v1/rooms/${room}/messages?after=0`, undefined, 403],
        ['POST', `/v1/rooms/${room}/messages`, { body: 'intruder', client_msg_id: 'i2' }, 403],
        ['POST', `/v1/rooms/${room}/read`, { seq: 1 }, 403],
        ['DELETE', `/v1/push/subscriptions/${subId}`, undefined, 404],
    ];
    for (const [method, p, body, status] of cases) {
        const res = await http.request(method, p, { body, token: t });
        assertError(res, status, status === 403 ? 'forbidden' : 'not_found', `${method} ${p} as a non-member`);
        assert.ok(!res.text.includes('secret') && !res.text.includes(bob.username),
            `${method} ${p}: the refusal leaks room content: ${res.text}`);
    }
    // A room that does not exist is 404 for everyone.
    const nx = await http.get('/v1/rooms/999999', { token: t });
    assertError(nx, 404, 'not_found', 'unknown room');
    // The room is not among mallory's rooms.
    const list = await http.get('/v1/rooms', { token: t });
    assert.equal(list.status, 200);
    assert.ok(!list.json.rooms.some((r) => r.id === room), 'a non-member lists the room');
    // Presence of users sharing no room with the caller is left out.
    if (presenceRoute) {
        const pres = await http.get(`/v1/presence?user_ids=${alice.user.id},${bob.user.id}`, { token: t });
        assert.equal(pres.status, 200, pres.text);
        assert.deepEqual(pres.json.presence, [], `presence leaks strangers: ${pres.text}`);
    }
    // Alice's subscription survived mallory's delete.
    const again = await http.del(`/v1/push/subscriptions/${subId}`, { token: t });
    assert.equal(again.status, 404);
    // Nothing changed in the room.
    const hist = await http.get(`/v1/rooms/${room}/messages`, { token: alice.access_token });
    assert.deepEqual(hist.json.messages.map((m) => m.body), ['secret']);
    const show = await http.get(`/v1/rooms/${room}`, { token: alice.access_token });
    assert.equal(show.json.room.members.length, 2);
    assert.equal(show.json.room.read_seq, msgSeq);
});

test('every frame type from a non-member or with a bad token is refused, and nothing of the room is delivered', async () => {
    const a = await wsConnect(server, alice.access_token);
    const m = await wsConnect(server, mallory.access_token);
    await a.next('hello');
    await m.next('hello');

    m.send({ type: 'send', room_id: room, body: 'intruder', client_msg_id: 'w1' });
    const e1 = await m.next({ type: 'error', client_msg_id: 'w1' });
    assert.ok(['forbidden', 'not_found'].includes(e1.code), JSON.stringify(e1));

    m.send({ type: 'read', room_id: room, seq: 1 });
    m.send({ type: 'typing', room_id: room });
    m.send({ type: 'sync', rooms: { [room]: 0 } });
    await m.next('synced');
    for (const [name, token] of Object.entries(bad)) {
        m.send({ type: 'auth', access_token: token });
        const e = await m.next('error');
        assert.equal(e.code, 'unauthorized', `auth frame with a ${name} token: ${JSON.stringify(e)}`);
    }
    // Another user's valid token does not turn the connection into that user.
    m.send({ type: 'auth', access_token: alice.access_token });
    const ef = await m.next('error');
    assert.equal(ef.code, 'forbidden', JSON.stringify(ef));

    // Alice types and posts; she is told of no typing or read from mallory.
    a.send({ type: 'typing', room_id: room });
    a.send({ type: 'send', room_id: room, body: 'after the sweep', client_msg_id: 'a2' });
    await a.next({ type: 'ack', client_msg_id: 'a2' });
    const hist = await http.post(`/v1/rooms/${room}/messages`, { body: 'http post', client_msg_id: 'a3' }, { token: alice.access_token });
    assert.equal(hist.status, 201);
    await a.next((f) => f.type === 'message' && f.message.body === 'http post');
    // A ping answered after everything above was handled: the connection's frames so
    // far are all mallory will ever get for them.
    m.send({ type: 'ping' });
    await m.next('pong');
    a.send({ type: 'ping' });
    await a.next('pong');
    const leaked = m.frames.filter((f) => JSON.stringify(f).includes('secret') ||
        f.room_id === room || f.message?.room_id === room || f.room?.id === room);
    assert.deepEqual(leaked, [], 'a non-member received frames of the room');
    assert.ok(!a.frames.some((f) => (f.type === 'typing' || f.type === 'read') && f.user_id === mallory.user.id),
        'a member was told of a non-member\'s typing or read');
    // Mallory's connection still belongs to mallory.
    const bodies = (await http.get(`/v1/rooms/${room}/messages`, { token: alice.access_token })).json.messages.map((x) => x.body);
    assert.deepEqual(bodies, ['secret', 'after the sweep', 'http post']);
    await a.close();
    await m.close();
});

test('a refused token replacement leaves the connection open under its old token', { timeout: 20000 }, async () => {
    const m = await wsConnect(server, mallory.access_token);
    await m.next('hello');
    m.send({ type: 'auth', access_token: bad.expired });
    assert.equal((await m.next('error')).code, 'unauthorized');
    m.send({ type: 'ping' });
    await m.next('pong');
    await waitFor(() => m.ws.readyState === 1, { message: 'connection still open' });
    await m.close();
});
