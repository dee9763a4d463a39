// push-failures.test.mjs: push endpoints that keep failing cost a bounded amount of disk.
// A user can store 16 endpoints that never answer and have messages sent to itself;
// every failed push used to become a dead letter holding the whole message. Now the
// dead-letter table is bounded ([bus] deadletter_max_rows, deadletter_max_bytes: the
// oldest rows go), a push dead letter holds a reference to the message (a replay reads
// the message again), and a subscription failing subscription_max_failures times in a
// row is marked failing (no more retries or dead letters), shown to its owner, and
// dropped after subscription_failing_ttl seconds. A replay asks for the message as its
// recipient, so one who has left the room is not notified.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { startServer, api, registerAndLogin, uniqueName, waitFor, freePort, runChatd, tmpDir }
    from './lib/harness.mjs';
import { makeCertificates, startReceiver, makeSubscription, checkPush } from './lib/push-receiver.mjs';

const as = (u) => ({ token: u.access_token });
const BODY = 'x'.repeat(4000);
const servers = [];
after(async () => {
    for (const s of servers)
        if (s.exitStatus === null)
            assert.equal(await s.stop(), 0, s.logs());
});

async function metric(srv, name) {
    const text = (await api(srv).get('/metrics')).text;
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line ? Number(line.split(' ').pop()) : 0;
}

const dlq = (srv, ...args) => runChatd(['dlq', ...args, '-c', srv.configPath, '--data-dir', srv.dataDir]);
const dlqRows = async (srv) => (await dlq(srv, 'list')).stdout.split('\n').filter((l) => /^\d+\s/.test(l));

// A sender, a recipient who never connects, 16 endpoints on a port nobody listens on.
async function flood(config, posts) {
    const port = await freePort();
    const srv = await startServer({ config: `[notification]
allow_private_endpoints = yes
max_attempts = 2
retry_base_ms = 20
${config}` });
    servers.push(srv);
    const h = api(srv);
    const [sender, victim] = await Promise.all(['s', 'v'].map((n) => registerAndLogin(srv, uniqueName(n))));
    for (let i = 0; i < 16; i++) {
        const sub = makeSubscription(`https://127.0.0.1:${port}/bogus/${i}`);
        assert.equal((await h.post('/v1/push/subscriptions', sub.json, as(victim))).status, 201);
    }
    const room = await h.post('/v1/rooms', { name: 'flood', members: [victim.username] }, as(sender));
    assert.equal(room.status, 201, room.text);
    for (let i = 0; i < posts; i++) {
        const res = await h.post(`/v1/rooms/${room.json.room.id}/messages`, { body: BODY }, as(sender));
        assert.equal(res.status, 201, res.text);
    }
    return { srv, h, victim };
}

// Every delivery is finished: nothing queued in the bus or in flight outside.
async function settled(srv) {
    await waitFor(async () => (await metric(srv, 'chatd_bus_queue_depth')) === 0 &&
        (await metric(srv, 'chatd_notification_requests_pending')) === 0,
    { message: 'every push finished', timeout: 60000, interval: 200 });
}

test('a flood of failing pushes keeps the dead-letter table within its bounds, oldest out', async () => {
    const { srv } = await flood(`subscription_max_failures = 1000000
[bus]
deadletter_max_rows = 40
deadletter_max_bytes = 4096
`, 100);
    // 100 messages x 16 endpoints: 1,600 dead letters written, at most 40 rows kept.
    await waitFor(async () => (await metric(srv, 'chatd_dead_letters_total')) >= 1600,
        { message: '1600 dead letters written', timeout: 60000, interval: 200 });
    await settled(srv);
    const rows = await dlqRows(srv);
    assert.ok(rows.length > 0 && rows.length <= 40, `${rows.length} rows`);
    await waitFor(async () => (await metric(srv, 'chatd_dead_letters')) === rows.length,
        { message: 'the rows gauge', timeout: 10000 });
    const bytes = await metric(srv, 'chatd_dead_letter_bytes');
    assert.ok(bytes > 0 && bytes <= 4096, `${bytes} bytes`);
    assert.equal(await metric(srv, 'chatd_dead_letters_evicted_total'), 1600 - rows.length);
    assert.match(srv.logs(), /dead letters evicted count=\d+ oldest first/);
    // The newest stay; each holds a reference to its message, not the message.
    const ids = rows.map((l) => Number(/^\d+/.exec(l)[0]));
    assert.equal(Math.max(...ids), 1600);
    const shown = (await dlq(srv, 'show', String(Math.max(...ids)))).stdout;
    assert.match(shown, /"message_ref":/);
    assert.ok(!shown.includes('xxxxxxxx'), 'no copy of the body');
});

test('a subscription failing again and again is marked failing, shown to its owner, then dropped', async () => {
    // A long subscription_failing_ttl while the failing state is looked at: a short one
    // would race the sweep on a slow machine (the 100 posts alone can outlast it).
    const { srv, h, victim } = await flood(`subscription_max_failures = 3
subscription_failing_ttl = 3600
`, 100);
    const list = async () => {
        const res = await h.get('/v1/push/subscriptions', as(victim));
        assert.equal(res.status, 200, res.text);
        return res.json.subscriptions;
    };
    const subs = await waitFor(async () => {
        const s = await list();
        return s.length === 16 && s.every((x) => x.failing_since !== null) && s;
    }, { message: 'all 16 failing', timeout: 30000, interval: 100 });
    for (const s of subs) {
        assert.ok(s.failures >= 3, JSON.stringify(s));
        assert.match(s.last_error, /connect/, JSON.stringify(s));
        assert.ok(s.failing_since <= Date.now() && s.failing_since > Date.now() - 600000);
        assert.match(s.endpoint, /^https:\/\/127\.0\.0\.1:\d+\/bogus\/\d+$/);
    }
    await settled(srv);
    // Failing subscriptions are neither retried nor dead-lettered: a few dead letters
    // from the first attempts at most, not one per message and endpoint. Pushes that
    // met chatd's own back-pressure during the burst, before their subscription was
    // marked, are retried and may be dead-lettered too (security.md says so; the
    // table's bounds hold them): those say so in their error, and are counted apart.
    const rows = await dlqRows(srv);
    const ownBackPressure = /too many (outbound requests|push messages being prepared)/;
    const endpointRows = rows.filter((r) => !ownBackPressure.test(r));
    assert.ok(endpointRows.length <= 32, `${endpointRows.length} dead letters of endpoint failures:\n${endpointRows.join('\n')}`);
    for (const r of endpointRows)
        assert.match(r, /connect|refused|push request failed/, r);
    // Another user cannot see them.
    const other = await registerAndLogin(srv, uniqueName('o'));
    assert.deepEqual((await h.get('/v1/push/subscriptions', as(other))).json, { subscriptions: [] });
    // With a ttl of one second they have been failing for longer (the state is in the
    // table, so it survives the restart): the sweep drops them.
    await waitFor(() => Date.now() > Math.max(...subs.map((s) => s.failing_since)) + 1000,
        { message: 'a second of failing', timeout: 5000, interval: 50 });
    await srv.stop();
    writeFileSync(srv.configPath, readFileSync(srv.configPath, 'utf8').replace(
        'subscription_failing_ttl = 3600', 'subscription_failing_ttl = 1'));
    await srv.restart();
    await waitFor(async () => (await list()).length === 0,
        { message: 'the failing subscriptions dropped', timeout: 30000, interval: 200 });
    assert.match(srv.logs(), /dropped failing push subscriptions count=16/);
});

test('a push dead letter holds a reference; its replay reads the message again and delivers it', async () => {
    const certs = makeCertificates(tmpDir('chatd-push-'));
    const rec = await startReceiver(certs);
    let failing = true;
    rec.answer = () => (failing ? 500 : 201);
    try {
        const srv = await startServer({ config: `[notification]
ca_file = ${certs.caFile}
allow_private_endpoints = yes
max_attempts = 2
retry_base_ms = 20
subscription_max_failures = 3
` });
        servers.push(srv);
        const h = api(srv);
        const vapidKey = (await h.get('/v1/push/vapid-public-key')).json.key;
        const [sender, erin] = await Promise.all(['s', 'e'].map((n) => registerAndLogin(srv, uniqueName(n))));
        const sub = makeSubscription(rec.url('/push/erin'));
        assert.equal((await h.post('/v1/push/subscriptions', sub.json, as(erin))).status, 201);
        const room = await h.post('/v1/rooms', { name: 'replay', members: [erin.username] }, as(sender));
        const post = async (body) =>
            (await h.post(`/v1/rooms/${room.json.room.id}/messages`, { body }, as(sender))).json.message;
        const mine = async () => (await h.get('/v1/push/subscriptions', as(erin))).json.subscriptions[0];
        const body = 'rebuilt from the database';
        const msg = await post(body);
        await rec.next();
        await rec.next();
        const line = await waitFor(async () => (await dlqRows(srv)).find((l) => l.includes('notification.push')),
            { message: 'the push dead letter', timeout: 10000 });
        const id = /^\d+/.exec(line)[0];
        const shown = (await dlq(srv, 'show', id)).stdout;
        assert.match(shown, new RegExp(`"message_ref":\\s*\\{\\s*"id":\\s*${msg.id},\\s*"room_id":\\s*${msg.room_id},\\s*"seq":\\s*${msg.seq}`));
        assert.ok(!shown.includes(body), shown);
        await waitFor(async () => (await mine()).failures === 2, { message: 'two failures counted' });
        const s1 = await mine();
        assert.equal(s1.failing_since, null, 'two failures are not yet failing (3)');
        assert.equal(s1.last_error, 'push service answered 500');

        // A third failure: failing. That message is tried once, and not dead-lettered.
        await post('tried once');
        await rec.next();
        await waitFor(async () => (await mine()).failing_since !== null, { message: 'failing' });
        await settled(srv);
        assert.equal((await dlqRows(srv)).length, 1);
        assert.equal(rec.all().length, 3);

        // A replay the operator asks for that fails again keeps its row, failing or not.
        assert.equal((await dlq(srv, 'replay', id)).code, 0);
        await waitFor(async () => /^replay_requested: no$/m.test((await dlq(srv, 'show', id)).stdout) &&
            /^attempts: 4$/m.test((await dlq(srv, 'show', id)).stdout),
        { message: 'the failed replay back in its row', timeout: 15000 });
        assert.equal(rec.all().length, 5);

        failing = false;
        assert.equal((await dlq(srv, 'replay', id)).code, 0);
        const r = await rec.next((q) => q.status === 201, 15000);
        const { payload } = await checkPush(r, sub, vapidKey, rec.origin);
        assert.deepEqual(payload.message, { id: msg.id, seq: msg.seq, sender: sender.username, body });
        await waitFor(async () => (await dlqRows(srv)).length === 0,
            { message: 'the replayed row removed', timeout: 10000 });
        await waitFor(async () => {
            const s2 = await mine();
            return s2.failures === 0 && s2.failing_since === null && s2.last_error === null;
        }, { message: 'a success clears the failure state', timeout: 10000 });
    } finally {
        await rec.close();
    }
});

test('a replayed push dead letter is not delivered to a recipient who has left the room', async () => {
    const certs = makeCertificates(tmpDir('chatd-push-'));
    const rec = await startReceiver(certs);
    rec.answer = () => 500;
    try {
        const srv = await startServer({ config: `[notification]
ca_file = ${certs.caFile}
allow_private_endpoints = yes
max_attempts = 2
retry_base_ms = 20
` });
        servers.push(srv);
        const h = api(srv);
        const [sender, fay] = await Promise.all(['s', 'f'].map((n) => registerAndLogin(srv, uniqueName(n))));
        const sub = makeSubscription(rec.url('/push/fay'));
        assert.equal((await h.post('/v1/push/subscriptions', sub.json, as(fay))).status, 201);
        const room = await h.post('/v1/rooms', { name: 'left', members: [fay.username] }, as(sender));
        assert.equal(room.status, 201, room.text);
        const roomId = room.json.room.id;
        const msg = await h.post(`/v1/rooms/${roomId}/messages`, { body: 'before she left' }, as(sender));
        assert.equal(msg.status, 201, msg.text);
        const line = await waitFor(async () => (await dlqRows(srv)).find((l) => l.includes('notification.push')),
            { message: 'the push dead letter', timeout: 15000 });
        const id = /^\d+/.exec(line)[0];
        assert.equal(rec.all().length, 2);
        const left = await h.del(`/v1/rooms/${roomId}/members/${fay.user.id}`, as(fay));
        assert.equal(left.status, 204, left.text);

        rec.answer = () => 201;
        assert.equal((await dlq(srv, 'replay', id)).code, 0);
        // The replay ends (its row goes) without a request: message.sync, asked as fay,
        // no longer gives her the room's messages.
        await waitFor(async () => (await dlqRows(srv)).length === 0,
            { message: 'the replayed row removed', timeout: 15000 });
        assert.equal(rec.all().length, 2, 'nothing pushed after she left');
        assert.match(srv.logs(), new RegExp(`push not replayed: message ${msg.json.message.id} is gone or user ${fay.user.id} left its room`));
    } finally {
        await rec.close();
    }
});
