// notifications.test.mjs: Web Push and webhooks against a local HTTPS receiver.
//
// The receiver (lib/push-receiver.mjs) plays the push service with a certificate from
// a CA made for the test and given to chatd as [notification] ca_file. It decrypts
// each push with the npm http_ece package using the subscription's private key and
// auth secret, and verifies the VAPID token with jose against the key chatd publishes.
// The receiver listens on 127.0.0.1, so the servers that push set allow_private_endpoints.
// Users are offline when they hold no WebSocket; messages are sent over HTTP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import webpush from 'web-push';
import { startServer, api, registerAndLogin, uniqueName, tmpDir, wsConnect, waitFor,
    runChatd } from './lib/harness.mjs';
import { makeCertificates, startReceiver, makeSubscription, checkPush } from './lib/push-receiver.mjs';

const SECRET = 'webhook secret for tests';
let certs, receiver, server, http, vapidKey;
let alice, bob, carol, dave;
let room;

const as = (u) => ({ token: u.access_token });

before(async () => {
    certs = makeCertificates(tmpDir('chatd-push-'));
    receiver = await startReceiver(certs);
    const flaky = new Set();
    receiver.answer = (r) => {
        if (r.path.startsWith('/gone/'))
            return 410;
        if (r.path.startsWith('/flaky/') && !flaky.has(r.path)) {
            flaky.add(r.path);       // the first attempt fails, the retry succeeds
            return 503;
        }
        return 201;
    };
    server = await startServer({ config: `[notification]
ca_file = ${certs.caFile}
allow_private_endpoints = yes
webhook_url = ${receiver.url('/hook')}
webhook_secret = ${SECRET}
max_attempts = 3
retry_base_ms = 50
` });
    http = api(server);
    [alice, bob, carol, dave] = await Promise.all(
        ['alice', 'bob', 'carol', 'dave'].map((n) => registerAndLogin(server, uniqueName(n))));
    const res = await http.post('/v1/rooms', { name: 'push test',
        members: [bob.username, carol.username, dave.username] }, as(alice));
    assert.equal(res.status, 201, res.text);
    room = res.json.room;
    const key = await http.get('/v1/push/vapid-public-key');
    assert.equal(key.status, 200, key.text);
    vapidKey = key.json.key;
});

after(async () => {
    await receiver?.close();
    if (server && server.exitStatus === null)
        assert.equal(await server.stop(), 0, server.logs());
});

async function subscribe(user, sub) {
    const res = await http.post('/v1/push/subscriptions', sub.json, as(user));
    assert.equal(res.status, 201, res.text);
    assert.equal(typeof res.json.id, 'number');
    return res.json.id;
}

async function send(user, body) {
    const res = await http.post(`/v1/rooms/${room.id}/messages`, { body }, as(user));
    assert.equal(res.status, 201, res.text);
    return res.json.message;
}

async function metric(srv, labels) {
    const res = await api(srv).get('/metrics');
    const line = res.text.split('\n').find((l) => l.startsWith(`chatd_notifications_total{${labels}}`));
    return line ? Number(line.split(' ').pop()) : 0;
}

test('the VAPID public key is an uncompressed P-256 point in base64url', async () => {
    assert.match(vapidKey, /^[A-Za-z0-9_-]{87}$/);
    const raw = Buffer.from(vapidKey, 'base64url');
    assert.equal(raw.length, 65);
    assert.equal(raw[0], 4);
    // A point on the curve: node accepts it as a public key.
    crypto.createPublicKey({ key: { kty: 'EC', crv: 'P-256',
        x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33).toString('base64url') },
    format: 'jwk' });
});

// The same point with one bit of y flipped: no longer on the curve.
function offCurve(p256dh) {
    const raw = Buffer.from(p256dh, 'base64url');
    raw[40] ^= 1;
    return raw.toString('base64url');
}

test('subscriptions are validated, owned, and idempotent by endpoint', async () => {
    const sub = makeSubscription(receiver.url('/push/validate'));
    const noauth = await http.post('/v1/push/subscriptions', sub.json);
    assert.equal(noauth.status, 401);
    const bad = [
        { ...sub.json, endpoint: 'http://127.0.0.1/push' },
        { ...sub.json, endpoint: 'not a url' },
        { endpoint: sub.json.endpoint },
        { ...sub.json, keys: { ...sub.json.keys, p256dh: sub.json.keys.p256dh.slice(0, 60) } },
        { ...sub.json, keys: { ...sub.json.keys, p256dh: offCurve(sub.json.keys.p256dh) } },
        { ...sub.json, keys: { ...sub.json.keys, auth: 'AAAA' } },
    ];
    for (const body of bad) {
        const res = await http.post('/v1/push/subscriptions', body, as(dave));
        assert.equal(res.status, 400, `${JSON.stringify(body)} -> ${res.status} ${res.text}`);
        assert.equal(res.json.error.code, 'invalid_argument');
    }
    const id = await subscribe(dave, sub);
    assert.equal(await subscribe(dave, sub), id, 'the same endpoint keeps its id');
    const other = await http.del(`/v1/push/subscriptions/${id}`, as(bob));
    assert.equal(other.status, 404, 'only the owner can remove it');
    assert.equal((await http.del(`/v1/push/subscriptions/${id}`, as(dave))).status, 204);
    assert.equal((await http.del(`/v1/push/subscriptions/${id}`, as(dave))).status, 404);
    for (const bad of ['abc', '0', '-1', '1.5', '1234567890123456789012']) {
        const res = await http.del(`/v1/push/subscriptions/${bad}`, as(dave));
        assert.equal(res.status, 400, `${bad} -> ${res.status}`);
        assert.equal(res.json.error.code, 'invalid_argument');
    }
});

test('the receiver accepts what the npm web-push library sends (checking the checker)', async () => {
    const sub = makeSubscription(receiver.url('/push/reference'));
    const keys = webpush.generateVAPIDKeys();
    const details = webpush.generateRequestDetails(sub.json, 'reference payload {"a":1}', {
        vapidDetails: { subject: 'mailto:test@example.com', publicKey: keys.publicKey,
            privateKey: keys.privateKey },
        contentEncoding: 'aes128gcm',
    });
    const headers = Object.fromEntries(Object.entries(details.headers)
        .map(([k, v]) => [k.toLowerCase(), String(v)]));
    const r = { headers, body: details.body };
    const { plain, claims } = await checkPush(r, sub, keys.publicKey, receiver.origin);
    assert.equal(plain, 'reference payload {"a":1}');
    assert.equal(claims.sub, 'mailto:test@example.com');
    await assert.rejects(checkPush(r, sub, vapidKey, receiver.origin), /not the server's key/);
});

test('offline members get an encrypted, VAPID-signed push', async () => {
    const bobSub = makeSubscription(receiver.url(`/push/bob-${bob.user.id}`));
    await subscribe(bob, bobSub);
    const long = `${'é'.repeat(150)}${'€'.repeat(100)}`;       // 250 characters
    const msg = await send(alice, long);
    const r = await receiver.next((q) => q.path === `/push/bob-${bob.user.id}`);
    const { payload, claims } = await checkPush(r, bobSub, vapidKey, receiver.origin);
    assert.equal(claims.sub, 'mailto:admin@localhost');
    assert.equal(claims.aud, receiver.origin);
    assert.equal(r.headers.urgency, 'normal');
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    assert.equal(r.body.readUInt32BE(16), 4096, 'record size');
    assert.equal(r.body[20], 65, 'keyid is the sender key');
    assert.deepEqual(payload, { type: 'message', room_id: room.id, message: {
        id: msg.id, seq: msg.seq, sender: alice.username, body: [...long].slice(0, 200).join('') } });

    // A second message: bob gets it too, with a fresh sender key and salt.
    const msg2 = await send(alice, 'second');
    const r2 = await receiver.next((q) => q.path === `/push/bob-${bob.user.id}`);
    assert.equal((await checkPush(r2, bobSub, vapidKey, receiver.origin)).payload.message.id, msg2.id);
    assert.notDeepEqual(r2.body.subarray(0, 86), r.body.subarray(0, 86));
    // The sender is never notified of its own message.
    assert.equal(receiver.all((q) => q.path === '/hook' &&
        JSON.parse(q.body).recipient_id === alice.user.id).length, 0);
});

test('a member with an open WebSocket gets neither a push nor a webhook', async () => {
    // Who is online is the presence module's word (presence.changed).
    const carolSub = makeSubscription(receiver.url(`/push/carol-${carol.user.id}`));
    await subscribe(carol, carolSub);
    const carolWs = await wsConnect(server, carol.access_token);
    await carolWs.next('hello');
    try {
        const msg = await send(alice, 'carol is here');
        const isFor = (q, user) => q.path === '/hook' && JSON.parse(q.body).message.id === msg.id &&
            JSON.parse(q.body).recipient_id === user.id;
        // Bob (offline) is notified through both channels; the same fan-out decided Carol's.
        await receiver.next((q) => q.path === `/push/bob-${bob.user.id}`);
        await receiver.next((q) => isFor(q, bob.user));
        await carolWs.next((f) => f.type === 'message' && f.message.id === msg.id);
        assert.equal(receiver.all((q) => q.path.startsWith('/push/carol-')).length, 0);
        assert.equal(receiver.all((q) => isFor(q, carol.user)).length, 0);
    } finally {
        await carolWs.close();
    }
    // Once she has left, she is notified again.
    await waitFor(async () => {
        const res = await http.get(`/v1/presence?user_ids=${carol.user.id}`, as(alice));
        return res.json?.presence?.[0]?.status === 'offline';
    }, { message: 'carol offline' });
    const msg = await send(alice, 'carol has left');
    const r = await receiver.next((q) => q.path === `/push/carol-${carol.user.id}`);
    assert.equal((await checkPush(r, carolSub, vapidKey, receiver.origin)).payload.message.id, msg.id);
});

test('webhooks are signed with HMAC-SHA256 and carry a stable event id', async () => {
    const msg = await send(alice, 'hello webhook');
    const r = await receiver.next((q) => q.path === '/hook' &&
        JSON.parse(q.body).message.id === msg.id && JSON.parse(q.body).recipient_id === bob.user.id);
    const expected = crypto.createHmac('sha256', SECRET).update(r.body).digest('hex');
    assert.equal(r.headers['x-chatd-signature'], `sha256=${expected}`);
    assert.equal(r.headers['x-chatd-event-id'], `msg-${msg.id}-${bob.user.id}`);
    assert.equal(r.headers['content-type'], 'application/json');
    const body = JSON.parse(r.body);
    assert.equal(body.type, 'message');
    assert.equal(body.recipient_id, bob.user.id);
    assert.deepEqual(body.message, msg);
});

test('a 410 from the push service removes the subscription', async () => {
    const sub = makeSubscription(receiver.url(`/gone/dave-${dave.user.id}`));
    const id = await subscribe(dave, sub);
    const before = await metric(server, 'channel="push",result="gone"');
    await send(alice, 'to a gone subscription');
    await receiver.next((q) => q.path === `/gone/dave-${dave.user.id}`);
    await waitFor(async () => (await metric(server, 'channel="push",result="gone"')) > before,
        { message: 'the gone counter' });
    // The removal was queued before this request, on the same writer: it is gone.
    assert.equal((await http.del(`/v1/push/subscriptions/${id}`, as(dave))).status, 404);
    await send(alice, 'after the removal');
    await receiver.next((q) => q.path === '/hook' && JSON.parse(q.body).recipient_id === dave.user.id &&
        JSON.parse(q.body).message.body === 'after the removal');
    assert.equal(receiver.all((q) => q.path.startsWith('/gone/')).length, 1);
});

test('a push answered 503 is retried, freshly encrypted, and then delivered', async () => {
    const sub = makeSubscription(receiver.url(`/flaky/dave-${dave.user.id}`));
    const id = await subscribe(dave, sub);
    try {
        const msg = await send(alice, 'try again');
        const first = await receiver.next((q) => q.path === `/flaky/dave-${dave.user.id}`);
        assert.equal(first.status, 503);
        const second = await receiver.next((q) => q.path === `/flaky/dave-${dave.user.id}`);
        assert.equal(second.status, 201);
        assert.ok(second.at - first.at >= 40, 'the retry waited for the backoff');
        for (const r of [first, second])
            assert.equal((await checkPush(r, sub, vapidKey, receiver.origin)).payload.message.id, msg.id);
        assert.notDeepEqual(second.body.subarray(0, 16), first.body.subarray(0, 16), 'a new salt');
    } finally {
        assert.equal((await http.del(`/v1/push/subscriptions/${id}`, as(dave))).status, 204);
    }
});

test('a failing webhook is retried, dead-lettered, and delivered by chatd dlq replay', async () => {
    const rec = await startReceiver(certs);
    const untrusted = await startReceiver(makeCertificates(tmpDir('chatd-untrusted-')));
    let failing = true;
    rec.answer = () => (failing ? 500 : 200);
    const srv = await startServer({ config: `[notification]
ca_file = ${certs.caFile}
allow_private_endpoints = yes
webhook_url = ${rec.url('/hook')}
webhook_secret = ${SECRET}
max_attempts = 3
retry_base_ms = 50
` });
    try {
        const h = api(srv);
        const [sender, erin] = await Promise.all(
            ['sender', 'erin'].map((n) => registerAndLogin(srv, uniqueName(n))));
        // Erin's browser pushes through a service whose certificate chatd does not trust.
        const sub = makeSubscription(untrusted.url('/push/erin'));
        assert.equal((await h.post('/v1/push/subscriptions', sub.json, as(erin))).status, 201);
        const created = await h.post('/v1/rooms', { name: 'dlq', members: [erin.username] }, as(sender));
        assert.equal(created.status, 201, created.text);
        const posted = await h.post(`/v1/rooms/${created.json.room.id}/messages`,
            { body: 'will fail first' }, as(sender));
        assert.equal(posted.status, 201, posted.text);
        const eventId = `msg-${posted.json.message.id}-${erin.user.id}`;

        // Three attempts, each answered 500, with the same event id.
        for (let i = 0; i < 3; i++) {
            const r = await rec.next();
            assert.equal(r.headers['x-chatd-event-id'], eventId);
        }
        const cli = (...args) => runChatd(['dlq', ...args, '-c', srv.configPath,
            '--data-dir', srv.dataDir]);
        const line = await waitFor(async () => {
            const out = await cli('list');
            return out.stdout.split('\n').find((l) => l.includes('notification.webhook'));
        }, { message: 'a dead letter for notification.webhook', timeout: 10000 });
        assert.match(line, /500/, 'the dead letter keeps the last error');
        const pushLine = await waitFor(async () => {
            const out = await cli('list');
            return out.stdout.split('\n').find((l) => l.includes('notification.push'));
        }, { message: 'a dead letter for notification.push', timeout: 10000 });
        assert.match(pushLine, /certificate/, 'a TLS verification failure is the error');
        assert.equal(untrusted.all().length, 0, 'nothing reached the untrusted service');
        assert.equal(rec.all().length, 3, 'no attempt after the last one');
        const id = /\d+/.exec(line)[0];
        const shown = await cli('show', id);
        assert.equal(shown.code, 0, shown.stderr);
        assert.ok(shown.stdout.includes(eventId.split('-')[1]), shown.stdout);

        failing = false;
        const replay = await cli('replay', id);
        assert.equal(replay.code, 0, replay.stdout + replay.stderr);
        const r = await rec.next(() => true, 15000);
        assert.equal(r.status, 200);
        assert.equal(r.headers['x-chatd-event-id'], eventId, 'a replay keeps the event id');
        const expected = crypto.createHmac('sha256', SECRET).update(r.body).digest('hex');
        assert.equal(r.headers['x-chatd-signature'], `sha256=${expected}`);
        // The push dead letter stays: its cause was not fixed.
        await waitFor(async () => !(await cli('list')).stdout.includes('notification.webhook'),
            { message: 'the replayed dead letter leaves the table', timeout: 10000 });
        assert.ok((await cli('list')).stdout.includes('notification.push'));
    } finally {
        await rec.close();
        await untrusted.close();
    }
    assert.equal(await srv.stop(), 0, srv.logs());
});

test('a shutdown does not wait forever for a receiver, and loses nothing', async () => {
    const rec = await startReceiver(certs);
    rec.answer = () => 0;                        // never answers
    // No allow_private_endpoints: the webhook is the operator's own URL, loopback too.
    const srv = await startServer({ config: `[notification]
ca_file = ${certs.caFile}
webhook_url = ${rec.url('/hook')}
max_attempts = 3
retry_base_ms = 50
` });
    try {
        const h = api(srv);
        const [sender, frank] = await Promise.all(
            ['sender', 'frank'].map((n) => registerAndLogin(srv, uniqueName(n))));
        const created = await h.post('/v1/rooms', { name: 'drain', members: [frank.username] }, as(sender));
        assert.equal(created.status, 201, created.text);
        assert.equal((await h.post(`/v1/rooms/${created.json.room.id}/messages`,
            { body: 'in flight at shutdown' }, as(sender))).status, 201);
        await rec.next();                         // the request is in flight, unanswered
        const t0 = Date.now();
        assert.equal(await srv.stop(), 0, srv.logs());
        assert.ok(Date.now() - t0 < 9000, `the drain took ${Date.now() - t0} ms`);
        const out = await runChatd(['dlq', 'list', '-c', srv.configPath, '--data-dir', srv.dataDir]);
        assert.ok(out.stdout.includes('notification.webhook'), out.stdout + out.stderr);
    } finally {
        await rec.close();
        if (srv.exitStatus === null)
            await srv.stop();
    }
});

test('the VAPID key survives a restart', async () => {
    const srv = await startServer({ config: `[notification]\nca_file = ${certs.caFile}\nallow_private_endpoints = yes\n` });
    try {
        const k1 = (await api(srv).get('/v1/push/vapid-public-key')).json.key;
        await srv.restart();
        const k2 = (await api(srv).get('/v1/push/vapid-public-key')).json.key;
        assert.equal(k2, k1);
    } finally {
        assert.equal(await srv.stop(), 0, srv.logs());
    }
});
