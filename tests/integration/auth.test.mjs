// auth.test.mjs: accounts, tokens and sessions through the real HTTP interface.
// `jose` (a JOSE implementation nobody here wrote) verifies the tokens chatd issues
// against the JWKS, and forges the tokens chatd must refuse.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as jose from 'jose';
import { startServer, api, request, registerAndLogin, uniqueName, runChatd, tmpDir, assertApiError, sqliteOnly } from './lib/harness.mjs';

const PASSWORD = 'Zebra-Passw0rd-4-grep-Qx7';
let server;
let http;

before(async () => {
    // debug logging: the password must stay out of even the most talkative log.
    server = await startServer({ config: '[log]\nlevel = debug\n' });
    http = api(server);
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

const me = (token, headers) => request(server, 'GET', '/v1/me', { token, headers });

async function jwks() {
    const res = await http.get('/.well-known/jwks.json');
    assert.equal(res.status, 200);
    return res.json;
}

/** The server's own signing key, read from its data directory (to forge claims). */
async function serverKey(srv = server) {
    const pem = readFileSync(path.join(srv.dataDir, 'jwt.pem'), 'utf8');
    return jose.importPKCS8(pem, 'RS256');
}

function goodClaims(user, over = {}) {
    const now = Math.floor(Date.now() / 1000);
    return { iss: 'chatd', aud: 'chatd', sub: String(user.id), name: user.username,
        iat: now, exp: now + 600, jti: crypto.randomUUID(), ...over };
}

test('register folds case, validates, and refuses a taken name', async () => {
    const base = uniqueName('Reg');
    const res = await http.post('/v1/auth/register', { username: base.toUpperCase(), password: PASSWORD });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.user.username, base.toLowerCase());
    assert.ok(Number.isInteger(res.json.user.id) && res.json.user.id > 0);
    assertApiError(await http.post('/v1/auth/register', { username: base.toLowerCase(), password: PASSWORD }),
        409, 'conflict');

    const bad = [
        [{ username: 'ab', password: PASSWORD }, /username/],
        [{ username: 'x'.repeat(33), password: PASSWORD }, /username/],
        [{ username: 'has space', password: PASSWORD }, /username/],
        [{ username: 'jörg', password: PASSWORD }, /username/],
        [{ username: 'semi;colon', password: PASSWORD }, /username/],
        [{ username: 42, password: PASSWORD }, /username/],
        [{ password: PASSWORD }, /username/],
        [{ username: uniqueName(), password: 'short12' }, /password/],
        [{ username: uniqueName(), password: 'x'.repeat(1025) }, /password/],
        [{ username: uniqueName(), password: 12345678 }, /password/],
        [{ username: uniqueName() }, /password/],
    ];
    for (const [body, re] of bad) {
        const r = await http.post('/v1/auth/register', body);
        assertApiError(r, 400, 'invalid_argument');
        assert.match(r.json.error.message, re, JSON.stringify(body));
    }
    assertApiError(await http.post('/v1/auth/register', '{"username":'), 400, 'invalid_argument');
    assertApiError(await http.post('/v1/auth/register', '[1,2]'), 400, 'invalid_argument');
    // the bounds themselves are fine
    const edge3 = await http.post('/v1/auth/register', { username: 'z.-', password: 'x'.repeat(1024) });
    assert.equal(edge3.status, 201, edge3.text);
    const edge32 = await http.post('/v1/auth/register', { username: 'y'.repeat(32), password: '12345678' });
    assert.equal(edge32.status, 201, edge32.text);
});

test('login answers tokens; wrong password and unknown user look the same', async () => {
    const u = await registerAndLogin(server, uniqueName('login'), PASSWORD);
    const l = u.login;
    assert.equal(l.token_type, 'Bearer');
    assert.equal(l.expires_in, 900);
    assert.match(l.refresh_token, /^[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(l.user, { id: u.user.id, username: u.username });

    const meRes = await me(u.access_token);
    assert.equal(meRes.status, 200);
    assert.deepEqual(meRes.json, { user: { id: u.user.id, username: u.username } });

    // upper case logs in too (names are case-folded)
    const upper = await http.post('/v1/auth/login', { username: u.username.toUpperCase(), password: PASSWORD });
    assert.equal(upper.status, 200, upper.text);

    const wrong = await http.post('/v1/auth/login', { username: u.username, password: PASSWORD + 'x' });
    const unknown = await http.post('/v1/auth/login', { username: uniqueName('nobody'), password: PASSWORD });
    const invalidName = await http.post('/v1/auth/login', { username: 'no', password: PASSWORD });
    assertApiError(wrong, 401, 'unauthorized');
    assertApiError(unknown, 401, 'unauthorized');
    assertApiError(invalidName, 401, 'unauthorized');
    assert.equal(wrong.json.error.message, unknown.json.error.message);
    assert.equal(wrong.json.error.message, invalidName.json.error.message);
    assertApiError(await http.post('/v1/auth/login', { username: u.username }), 400, 'invalid_argument');
});

test('unknown and existing users cost the same time', async () => {
    const u = await registerAndLogin(server, uniqueName('timing'), PASSWORD);
    const time = async (username) => {
        const t0 = process.hrtime.bigint();
        const r = await http.post('/v1/auth/login', { username, password: 'not the password' });
        assert.equal(r.status, 401);
        return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    const known = [], unknown = [];
    for (let i = 0; i < 4; i++) {
        known.push(await time(u.username));
        unknown.push(await time(uniqueName('ghost')));
    }
    const median = (a) => a.sort((x, y) => x - y)[a.length >> 1];
    // both run one scrypt: an unknown user is not answered in a fraction of the time
    assert.ok(median(unknown) > median(known) * 0.5, `known ${known} unknown ${unknown}`);
    assert.ok(median(unknown) > 10, `unknown user answered in ${median(unknown)} ms: no hash ran`);
});

test('jose verifies chatd tokens against the JWKS', async () => {
    const u = await registerAndLogin(server, uniqueName('jose'), PASSWORD);
    const set = await jwks();
    assert.equal(set.keys.length, 1);
    const k = set.keys[0];
    assert.equal(k.kty, 'RSA');
    assert.equal(k.alg, 'RS256');
    assert.equal(k.use, 'sig');
    assert.equal(k.e, 'AQAB');
    assert.ok(Buffer.from(k.n, 'base64url').length >= 256, 'RSA 2048 or more');
    assert.equal(k.d, undefined, 'no private part');
    assert.equal(k.kid, await jose.calculateJwkThumbprint({ kty: k.kty, n: k.n, e: k.e }, 'sha256'));

    const JWKS = jose.createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jose.jwtVerify(u.access_token, JWKS, {
        issuer: 'chatd', audience: 'chatd', algorithms: ['RS256'],
    });
    assert.equal(protectedHeader.alg, 'RS256');
    assert.equal(protectedHeader.kid, k.kid);
    assert.equal(payload.sub, String(u.user.id));
    assert.equal(payload.name, u.username);
    assert.equal(payload.exp - payload.iat, 900);
    assert.ok(Math.abs(payload.iat - Date.now() / 1000) < 30);
    assert.equal(typeof payload.jti, 'string');
    const again = await http.post('/v1/auth/login', { username: u.username, password: PASSWORD });
    assert.notEqual(jose.decodeJwt(again.json.access_token).jti, payload.jti);
});

test('forged, stale and misaddressed tokens are refused with 401', async () => {
    const u = await registerAndLogin(server, uniqueName('forge'), PASSWORD);
    const { kid, ...pub } = (await jwks()).keys[0];
    const realKey = await serverKey();
    const sign = (claims, header = { alg: 'RS256', kid }, key = realKey) =>
        new jose.SignJWT(claims).setProtectedHeader(header).sign(key);
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

    // control: the real key with proper claims is accepted, so refusals below are
    // about the one thing each token gets wrong
    assert.equal((await me(await sign(goodClaims(u.user)))).status, 200);

    const pubPem = crypto.createPublicKey({ key: { ...pub, kid }, format: 'jwk' })
        .export({ type: 'spki', format: 'pem' });
    const other = await jose.generateKeyPair('RS256');
    const now = Math.floor(Date.now() / 1000);
    const forged = {
        'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64(goodClaims(u.user))}.`,
        'alg none with kid': `${b64({ alg: 'none', kid })}.${b64(goodClaims(u.user))}.`,
        'jose UnsecuredJWT': new jose.UnsecuredJWT(goodClaims(u.user)).encode(),
        'HS256 keyed with the public PEM': await sign(goodClaims(u.user), { alg: 'HS256', kid },
            new TextEncoder().encode(pubPem)),
        'another RSA key, same kid': await sign(goodClaims(u.user), { alg: 'RS256', kid }, other.privateKey),
        'unknown kid': await sign(goodClaims(u.user), { alg: 'RS256', kid: 'not-our-key' }),
        'no kid': await sign(goodClaims(u.user), { alg: 'RS256' }),
        'expired': await sign(goodClaims(u.user, { iat: now - 1000, exp: now - 61 })),
        'not yet valid (nbf)': await sign(goodClaims(u.user, { nbf: now + 300 })),
        'issued in the future': await sign(goodClaims(u.user, { iat: now + 300, exp: now + 900 })),
        'wrong audience': await sign(goodClaims(u.user, { aud: 'someone-else' })),
        'wrong issuer': await sign(goodClaims(u.user, { iss: 'evil' })),
        'no exp': await sign((({ exp, ...c }) => c)(goodClaims(u.user))),
        'user that does not exist': await sign(goodClaims({ id: 987654321, username: 'ghost' })),
        'sub not a number': await sign(goodClaims({ id: 'admin', username: 'x' })),
        'tampered payload': (() => {
            const [h, , s] = u.access_token.split('.');
            return `${h}.${b64(goodClaims({ id: u.user.id + 1, username: 'someone' }))}.${s}`;
        })(),
        'truncated signature': u.access_token.slice(0, -10),
        'garbage': 'abc.def.ghi',
        'two segments': u.access_token.split('.').slice(0, 2).join('.'),
    };
    for (const [what, token] of Object.entries(forged)) {
        const r = await me(token);
        assert.equal(r.status, 401, `${what}: ${r.status} ${r.text}`);
        assert.equal(r.json?.error?.code, 'unauthorized', what);
    }
    // a wrong scheme, and no token at all
    assert.equal((await me(undefined, { Authorization: `Basic ${u.access_token}` })).status, 401);
    assert.equal((await me()).status, 401);
    // the genuine token still works
    assert.equal((await me(u.access_token)).status, 200);

    const metrics = (await http.get('/metrics')).text;
    for (const reason of ['bad_alg', 'bad_signature', 'unknown_kid', 'expired', 'not_yet_valid',
        'bad_audience', 'bad_issuer', 'unknown_user', 'malformed']) {
        const m = new RegExp(`chatd_token_rejections_total\\{reason="${reason}"\\} (\\d+)`).exec(metrics);
        assert.ok(m && Number(m[1]) > 0, `rejections for ${reason}`);
    }
});

test('refresh rotates; a spent token revokes its family', async () => {
    const u = await registerAndLogin(server, uniqueName('rot'), PASSWORD);
    const otherDevice = await http.post('/v1/auth/login', { username: u.username, password: PASSWORD });
    assert.equal(otherDevice.status, 200);

    const r1 = await http.post('/v1/auth/refresh', { refresh_token: u.refresh_token });
    assert.equal(r1.status, 200, r1.text);
    assert.equal(r1.json.token_type, 'Bearer');
    assert.notEqual(r1.json.refresh_token, u.refresh_token);
    assert.deepEqual(r1.json.user, u.user);
    assert.equal((await me(r1.json.access_token)).status, 200);
    const r2 = await http.post('/v1/auth/refresh', { refresh_token: r1.json.refresh_token });
    assert.equal(r2.status, 200, r2.text);

    // the first token again: refused, and every token of that login dies with it
    assertApiError(await http.post('/v1/auth/refresh', { refresh_token: u.refresh_token }), 401, 'unauthorized');
    assertApiError(await http.post('/v1/auth/refresh', { refresh_token: r2.json.refresh_token }), 401, 'unauthorized');
    // another login's family lives on
    const o = await http.post('/v1/auth/refresh', { refresh_token: otherDevice.json.refresh_token });
    assert.equal(o.status, 200, o.text);

    assertApiError(await http.post('/v1/auth/refresh', { refresh_token: 'A'.repeat(43) }), 401, 'unauthorized');
    assertApiError(await http.post('/v1/auth/refresh', { refresh_token: 'short' }), 401, 'unauthorized');
    assertApiError(await http.post('/v1/auth/refresh', {}), 400, 'invalid_argument');
    assertApiError(await http.post('/v1/auth/refresh', { refresh_token: 5 }), 400, 'invalid_argument');
});

test('logout revokes the family', async () => {
    const u = await registerAndLogin(server, uniqueName('out'), PASSWORD);
    const r1 = await http.post('/v1/auth/refresh', { refresh_token: u.refresh_token });
    assert.equal(r1.status, 200);
    assert.equal((await http.post('/v1/auth/logout', { refresh_token: r1.json.refresh_token })).status, 401,
        'logout needs the bearer token');
    assertApiError(await http.post('/v1/auth/logout', {}, { token: r1.json.access_token }), 400, 'invalid_argument');
    const out = await http.post('/v1/auth/logout', { refresh_token: r1.json.refresh_token },
        { token: r1.json.access_token });
    assert.equal(out.status, 204, out.text);
    assertApiError(await http.post('/v1/auth/refresh', { refresh_token: r1.json.refresh_token }), 401, 'unauthorized');
    // logging out again is harmless
    assert.equal((await http.post('/v1/auth/logout', { refresh_token: r1.json.refresh_token },
        { token: r1.json.access_token })).status, 204);
    // someone else's token: answered, but that session is not touched
    const v = await registerAndLogin(server, uniqueName('victim'), PASSWORD);
    assert.equal((await http.post('/v1/auth/logout', { refresh_token: v.refresh_token },
        { token: r1.json.access_token })).status, 204);
    assert.equal((await http.post('/v1/auth/refresh', { refresh_token: v.refresh_token })).status, 200);
});

/** Sum and count of chatd_password_hash_seconds from /metrics. */
async function hashStats() {
    const text = (await http.get('/metrics')).text;
    const num = (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    return { sum: num('chatd_password_hash_seconds_sum'), count: num('chatd_password_hash_seconds_count') };
}

test('while 20 logins hash in parallel, /healthz answers promptly', async () => {
    const u = await registerAndLogin(server, uniqueName('load'), PASSWORD);
    const N = 20;
    let inFlight = N;
    const before = await hashStats();
    const t0 = Date.now();
    // a loaded machine may take long to hash 20 times: the point is the loop, not speed
    const logins = Array.from({ length: N }, () =>
        request(server, 'POST', '/v1/auth/login', { body: { username: u.username, password: PASSWORD }, timeout: 120000 })
            .then((r) => r, (e) => ({ status: e.message }))
            .finally(() => { inFlight--; }));
    const probes = [], reads = [];
    const timed = async (fn) => {
        const p0 = process.hrtime.bigint();
        const r = await fn();
        assert.equal(r.status, 200, r.text);
        return Number(process.hrtime.bigint() - p0) / 1e6;
    };
    while (inFlight > 0) {
        const ms = await timed(() => http.get('/healthz'));
        if (inFlight > 0)
            probes.push(ms);
        // a database read (on the thread pool the hashes share) is not stuck behind them
        const rms = await timed(() => http.get('/v1/rooms', { token: u.access_token }));
        if (inFlight > 0)
            reads.push(rms);
    }
    const results = await Promise.all(logins);
    const elapsed = Date.now() - t0;
    for (const r of results)
        assert.equal(r.status, 200, r.text);
    const after = await hashStats();
    const hashMs = ((after.sum - before.sum) / (after.count - before.count)) * 1000;
    assert.equal(after.count - before.count, N);
    assert.ok(probes.length >= 3, `only ${probes.length} health probes while logins ran (${elapsed} ms)`);
    const worst = Math.max(...probes);
    console.log(`# ${N} parallel logins in ${elapsed} ms (${(N * 1000 / elapsed).toFixed(1)} logins/s),` +
        ` one hash ${hashMs.toFixed(1)} ms; ${probes.length} /healthz probes, slowest ${worst.toFixed(1)} ms;` +
        ` slowest GET /v1/rooms ${Math.max(...reads).toFixed(1)} ms`);
    // Were hashing on the loop, a probe would wait behind the queued logins: several
    // whole hashes. 200 ms on a quiet machine; on one so loaded that a single hash takes
    // longer than that, one hash.
    const bound = Math.max(200, hashMs);
    assert.ok(worst < bound, `a /healthz took ${worst.toFixed(1)} ms while logins hashed (bound ${bound.toFixed(0)} ms)`);
    const worstRead = Math.max(...reads);
    assert.ok(worstRead < Math.max(300, hashMs),
        `a GET /v1/rooms took ${worstRead.toFixed(1)} ms while logins hashed`);
    const metrics = (await http.get('/metrics')).text;
    assert.match(metrics, /chatd_logins_total\{result="ok"\} \d+/);
    assert.match(metrics, /chatd_logins_total\{result="bad_credentials"\} \d+/);
    assert.match(metrics, /chatd_tokens_issued_total \d+/);
});

test('the password never reaches the database file or the logs', { skip: sqliteOnly('scans the chatd.db file and its WAL') }, async () => {
    const secret = `Unmistakable-${crypto.randomBytes(6).toString('hex')}`;
    const u = await registerAndLogin(server, uniqueName('secret'), secret);
    assert.equal((await http.post('/v1/auth/login', { username: u.username, password: secret + '!' })).status, 401);
    const files = () => readdirSync(server.dataDir).filter((f) => f.startsWith('chatd.db'));
    const scan = () => {
        assert.ok(files().length > 0);
        for (const f of files()) {
            const bytes = readFileSync(path.join(server.dataDir, f));
            assert.equal(bytes.indexOf(secret), -1, `password found in ${f}`);
            assert.equal(bytes.indexOf(u.refresh_token), -1, `refresh token found in ${f}`);
        }
    };
    scan();
    assert.ok(!server.logs().includes(secret), 'password found in the log');
    // after a clean stop the WAL is checkpointed into the main file: look again
    await server.restart();
    scan();
    assert.ok(!server.logs().includes(secret), 'password found in the log');
});

test('a restart keeps the key and the sessions', { skip: sqliteOnly('the mode of data_dir/jwt.pem: on PostgreSQL the key is kept in the database') }, async () => {
    const u = await registerAndLogin(server, uniqueName('restart'), PASSWORD);
    const kidBefore = (await jwks()).keys[0].kid;
    const mode = statSync(path.join(server.dataDir, 'jwt.pem')).mode & 0o777;
    assert.equal(mode, 0o600);
    await server.restart();
    assert.equal((await jwks()).keys[0].kid, kidBefore);
    assert.equal((await me(u.access_token)).status, 200, 'access token still valid');
    const r = await http.post('/v1/auth/refresh', { refresh_token: u.refresh_token });
    assert.equal(r.status, 200, r.text);
    assert.equal((await me(r.json.access_token)).status, 200);
});

test('closed registration; `chatd user add` provisions; `chatd keygen` and key_file', async () => {
    const dir = tmpDir();
    const keyFile = path.join(dir, 'signing.pem');
    const kg = await runChatd(['keygen', keyFile], { timeout: 30000 });
    assert.equal(kg.code, 0, kg.stderr);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    const kid = /kid=(\S+)/.exec(kg.stdout)?.[1];
    assert.ok(kid, kg.stdout);
    const again = await runChatd(['keygen', keyFile]);
    assert.notEqual(again.code, 0, 'an existing key is never replaced');

    const closed = await startServer({
        config: `[auth]\nregistration = closed\nkey_file = ${keyFile}\nissuer = chatd-closed\n`,
    });
    try {
        const c = api(closed);
        assertApiError(await c.post('/v1/auth/register', { username: uniqueName(), password: PASSWORD }),
            403, 'forbidden');
        assert.equal((await c.get('/.well-known/jwks.json')).json.keys[0].kid, kid);

        const name = uniqueName('Prov');
        const add = await runChatd(['-c', closed.configPath, '--data-dir', closed.dataDir,
            'user', 'add', name], { input: `${PASSWORD}\n`, timeout: 30000 });
        assert.equal(add.code, 0, add.stderr);
        const id = Number(add.stdout.trim());
        assert.ok(Number.isInteger(id) && id > 0, add.stdout);
        assert.ok(!add.stdout.includes(PASSWORD) && !add.stderr.includes(PASSWORD));

        const l = await c.post('/v1/auth/login', { username: name, password: PASSWORD });
        assert.equal(l.status, 200, l.text);
        assert.deepEqual(l.json.user, { id, username: name.toLowerCase() });
        assert.equal(jose.decodeJwt(l.json.access_token).iss, 'chatd-closed');
        assert.equal(jose.decodeProtectedHeader(l.json.access_token).kid, kid);
        const m = await request(closed, 'GET', '/v1/me', { token: l.json.access_token });
        assert.equal(m.status, 200, m.text);
        // a token of the other server (other key, other issuer) means nothing here
        const u = await registerAndLogin(server, uniqueName('elsewhere'), PASSWORD);
        assert.equal((await request(closed, 'GET', '/v1/me', { token: u.access_token })).status, 401);

        const dup = await runChatd(['-c', closed.configPath, '--data-dir', closed.dataDir,
            'user', 'add', name], { input: `${PASSWORD}\n`, timeout: 30000 });
        assert.notEqual(dup.code, 0);
        const short = await runChatd(['-c', closed.configPath, '--data-dir', closed.dataDir,
            'user', 'add', uniqueName()], { input: 'short\n' });
        assert.notEqual(short.code, 0);
        assert.match(short.stderr, /password/);
    } finally {
        await closed.stop();
    }
    // key_file naming a missing file stops the start with a clear error
    const missing = path.join(dir, 'missing.pem');
    await assert.rejects(startServer({ config: `[auth]\nkey_file = ${missing}\n` }), /missing\.pem/);
});

test('failed logins are throttled with Retry-After; registrations per address too', async () => {
    const t = await startServer({ config: '[limits]\nlogin_failures_per_min = 3\nregistrations_per_min = 3\n' });
    try {
        const c = api(t);
        const u = await registerAndLogin(t, uniqueName('thr'), PASSWORD);
        for (let i = 0; i < 3; i++)
            assertApiError(await c.post('/v1/auth/login', { username: u.username, password: 'wrong password' }),
                401, 'unauthorized');
        for (const password of ['wrong password', PASSWORD]) {
            const r = await c.post('/v1/auth/login', { username: u.username, password });
            assertApiError(r, 429, 'rate_limited');
            const after = Number(r.headers['retry-after']);
            assert.ok(Number.isInteger(after) && after >= 1 && after <= 60, `Retry-After ${r.headers['retry-after']}`);
        }
        const metrics = (await c.get('/metrics')).text;
        assert.match(metrics, /chatd_logins_total\{result="throttled"\} [1-9]/);
        // the earlier successful login left the access token valid
        assert.equal((await request(t, 'GET', '/v1/me', { token: u.access_token })).status, 200);

        // registrations: registerAndLogin used one of three
        for (let i = 0; i < 2; i++)
            assert.equal((await c.post('/v1/auth/register', { username: uniqueName(), password: PASSWORD })).status, 201);
        const r = await c.post('/v1/auth/register', { username: uniqueName(), password: PASSWORD });
        assertApiError(r, 429, 'rate_limited');
        assert.ok(Number(r.headers['retry-after']) >= 1);
    } finally {
        await t.stop();
    }
});

test('other modules find users by name through users.lookup', async () => {
    const a = await registerAndLogin(server, uniqueName('look'), PASSWORD);
    const bName = uniqueName('Mate');
    const b = await http.post('/v1/auth/register', { username: bName, password: PASSWORD });
    assert.equal(b.status, 201);
    // the message module resolves member names through the auth module's bus answer
    const room = await http.post('/v1/rooms', { name: 'lookup', members: [bName.toUpperCase()] },
        { token: a.access_token });
    assert.equal(room.status, 201, room.text);
    const ids = room.json.room.members.map((m) => m.id).sort((x, y) => x - y);
    assert.deepEqual(ids, [a.user.id, b.json.user.id].sort((x, y) => x - y));
    const unknown = await http.post('/v1/rooms', { name: 'x', members: [uniqueName('nobody')] },
        { token: a.access_token });
    assert.equal(unknown.status, 404, unknown.text);
});

test('SIGTERM while logins are in flight: every request is answered, exit 0', async () => {
    const t = await startServer();
    const u = await registerAndLogin(t, uniqueName('drain'), PASSWORD);
    const logins = Array.from({ length: 8 }, () =>
        request(t, 'POST', '/v1/auth/login', { body: { username: u.username, password: PASSWORD } })
            .then((r) => r.status, (e) => e.code ?? 'error'));
    const code = await t.stop('SIGTERM');
    assert.equal(code, 0, t.logs());
    for (const s of await Promise.all(logins))
        assert.ok([200, 503, 'ECONNREFUSED', 'ECONNRESET'].includes(s), `login answered ${s}`);
});

test('every 401 names the Bearer scheme: a wrong password, a bad refresh token, a missing or bad bearer', async () => {
    const u = await registerAndLogin(server, uniqueName('www'), PASSWORD);
    const answers = {
        'wrong password': await http.post('/v1/auth/login', { username: u.username, password: 'wrong password' }),
        'unknown user': await http.post('/v1/auth/login', { username: uniqueName('nobody'), password: PASSWORD }),
        'bad refresh token': await http.post('/v1/auth/refresh', { refresh_token: 'x'.repeat(43) }),
        'no bearer': await me(undefined),
    };
    for (const [what, res] of Object.entries(answers)) {
        assertApiError(res, 401, 'unauthorized');
        assert.equal(res.headers['www-authenticate'], 'Bearer', what);
    }
    const bad = await me('not.a.token');
    assertApiError(bad, 401, 'unauthorized');
    assert.equal(bad.headers['www-authenticate'], 'Bearer error="invalid_token"');
});
