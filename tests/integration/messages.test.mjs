// messages.test.mjs: posting messages and reading them back through HTTP: the MSG
// shape, seq without gaps under concurrent posts, client_msg_id dedupe (201 then 200,
// stored once), validation, history paging, read markers and unread counts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, registerAndLogin, uniqueName, assertApiError, registerUsers } from './lib/harness.mjs';

let server, http, alice, bob, carol, mallory;

before(async () => {
    server = await startServer({ config: '[message]\nmax_body_bytes = 4096\n' });
    http = api(server);
    [alice, bob, carol, mallory] = await registerUsers(server, ['alice', 'bob', 'carol', 'mallory']);
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

const as = (u) => ({ token: u.access_token });

async function createRoom(owner, members = []) {
    const res = await http.post('/v1/rooms', { name: uniqueName('room'), members: members.map((m) => m.username) },
        as(owner));
    assert.equal(res.status, 201, res.text);
    return res.json.room;
}

async function post(user, roomId, body, clientMsgId) {
    const res = await http.post(`/v1/rooms/${roomId}/messages`,
        clientMsgId === undefined ? { body } : { body, client_msg_id: clientMsgId }, as(user));
    return res;
}

/** Every message of a room, paging forward with after=. */
async function allMessages(user, roomId) {
    const out = [];
    let after = 0;
    for (;;) {
        const res = await http.get(`/v1/rooms/${roomId}/messages?after=${after}&limit=200`, as(user));
        assert.equal(res.status, 200, res.text);
        out.push(...res.json.messages);
        if (!res.json.has_more)
            return out;
        after = out[out.length - 1].seq;
    }
}

test('a posted message has the MSG shape; the sender is the authenticated user', async () => {
    const room = await createRoom(alice, [bob]);
    const res = await http.post(`/v1/rooms/${room.id}/messages`,
        { body: 'héllo ☕', client_msg_id: 'shape-1', sender_id: bob.user.id, sender: bob.username },
        as(alice));
    assert.equal(res.status, 201, res.text);
    const m = res.json.message;
    assert.deepEqual(Object.keys(m).sort(),
        ['body', 'client_msg_id', 'created_at', 'id', 'room_id', 'sender', 'sender_id', 'seq']);
    assert.equal(m.room_id, room.id);
    assert.equal(m.seq, 1);
    assert.equal(m.sender_id, alice.user.id);
    assert.equal(m.sender, alice.username);
    assert.equal(m.body, 'héllo ☕');
    assert.equal(m.client_msg_id, 'shape-1');
    assert.ok(Math.abs(m.created_at - Date.now()) < 60000);
    assert.equal(typeof m.id, 'number');

    const plain = await post(bob, room.id, 'no id');
    assert.equal(plain.status, 201, plain.text);
    assert.equal(plain.json.message.seq, 2);
    assert.equal(plain.json.message.client_msg_id, null);

    const hist = await http.get(`/v1/rooms/${room.id}/messages`, as(bob));
    assert.deepEqual(hist.json.messages, [m, plain.json.message]);
    assert.equal(hist.json.has_more, false);
});

test('seq counts 1, 2, 3 ... with no gap under concurrent posts', async () => {
    const room = await createRoom(alice, [bob, carol]);
    const users = [alice, bob, carol];
    const N = 60;
    const answers = await Promise.all(Array.from({ length: N * users.length }, (_, i) =>
        post(users[i % users.length], room.id, `m${i}`, `gap-${i}`)));
    for (const a of answers)
        assert.equal(a.status, 201, a.text);
    const seqs = answers.map((a) => a.json.message.seq).sort((a, b) => a - b);
    assert.deepEqual(seqs, Array.from({ length: N * users.length }, (_, i) => i + 1));
    const stored = await allMessages(alice, room.id);
    assert.equal(stored.length, N * users.length);
    stored.forEach((m, i) => assert.equal(m.seq, i + 1));
    const show = await http.get(`/v1/rooms/${room.id}`, as(bob));
    assert.equal(show.json.room.last_seq, N * users.length);
});

test('client_msg_id: the same id from the same user is stored once, 201 then 200', async () => {
    const room = await createRoom(alice, [bob]);
    const other = await createRoom(alice, [bob]);
    const first = await post(alice, room.id, 'once', 'dup-1');
    assert.equal(first.status, 201, first.text);
    const again = await post(alice, room.id, 'once, changed', 'dup-1');
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.json.message, first.json.message);

    // Concurrent repeats: exactly one 201, the rest 200 with the same message.
    const burst = await Promise.all(Array.from({ length: 20 }, () => post(bob, room.id, 'burst', 'dup-2')));
    assert.equal(burst.filter((r) => r.status === 201).length, 1);
    assert.equal(burst.filter((r) => r.status === 200).length, 19);
    assert.equal(new Set(burst.map((r) => r.json.message.id)).size, 1);

    // Another user may use the same id; the same user in another room may not.
    const bobs = await post(bob, room.id, 'mine', 'dup-1');
    assert.equal(bobs.status, 201, bobs.text);
    assertApiError(await post(alice, other.id, 'elsewhere', 'dup-1'), 409, 'conflict');

    const stored = await allMessages(alice, room.id);
    assert.equal(stored.length, 3);
    assert.deepEqual(stored.map((m) => m.seq), [1, 2, 3]);
    const otherStored = await allMessages(alice, other.id);
    assert.equal(otherStored.length, 0);
});

test('message validation: empty, oversized, not UTF-8, wrong types', async () => {
    const room = await createRoom(alice);
    const url = `/v1/rooms/${room.id}/messages`;
    const bad = [
        { body: '' },
        {},
        { body: 5 },
        { body: null },
        { body: 'x'.repeat(4097) },
        { body: 'é'.repeat(2049) },              // 4098 bytes
        { body: 'ok', client_msg_id: 7 },
        { body: 'ok', client_msg_id: '' },
        { body: 'ok', client_msg_id: 'x'.repeat(129) },
    ];
    for (const b of bad)
        assertApiError(await http.post(url, b, as(alice)), 400, 'invalid_argument');

    const raw = [
        '{"body":"\\ud800"}',                    // an escaped lone high surrogate
        '{"body":"a\\udc00b"}',                  // an escaped lone low surrogate
        '{"body":"nul\\u0000byte"}',             // NUL would cut the string
        Buffer.concat([Buffer.from('{"body":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('b"}')]),
        Buffer.concat([Buffer.from('{"body":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]),   // overlong
        Buffer.concat([Buffer.from('{"body":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]), // surrogate
        Buffer.concat([Buffer.from('{"body":"'), Buffer.from([0xe2, 0x82]), Buffer.from('"}')]),   // truncated
        '{"body":"x"',
        'not json',
        '[]',
    ];
    for (const r of raw)
        assertApiError(await http.post(url, r, as(alice)), 400, 'invalid_argument');

    // The edges that are fine: exactly the limit, in bytes; a surrogate pair.
    let ok = await http.post(url, { body: 'x'.repeat(4096) }, as(alice));
    assert.equal(ok.status, 201, ok.text);
    ok = await http.post(url, { body: 'é'.repeat(2048) }, as(alice));
    assert.equal(ok.status, 201, ok.text);
    ok = await http.post(url, '{"body":"\\ud83d\\ude00"}', as(alice));
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.json.message.body, '😀');
    // Nothing of the refused ones was stored, and no seq was spent on them.
    const stored = await allMessages(alice, room.id);
    assert.deepEqual(stored.map((m) => m.seq), [1, 2, 3]);
});

test('history: ascending seq, newest page by default, before/after/limit, has_more', async () => {
    const room = await createRoom(alice, [bob]);
    for (let i = 1; i <= 120; i += 20)
        await Promise.all(Array.from({ length: 20 }, (_, k) => post(alice, room.id, `h${i + k}`, `h-${i + k}`)));
    const page = async (q) => {
        const res = await http.get(`/v1/rooms/${room.id}/messages${q}`, as(bob));
        assert.equal(res.status, 200, res.text);
        return { seqs: res.json.messages.map((m) => m.seq), more: res.json.has_more };
    };
    const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

    assert.deepEqual(await page(''), { seqs: range(71, 120), more: true });
    assert.deepEqual(await page('?before=71'), { seqs: range(21, 70), more: true });
    assert.deepEqual(await page('?before=21'), { seqs: range(1, 20), more: false });
    assert.deepEqual(await page('?before=1'), { seqs: [], more: false });
    assert.deepEqual(await page('?limit=200'), { seqs: range(1, 120), more: false });
    assert.deepEqual(await page('?limit=1'), { seqs: [120], more: true });
    assert.deepEqual(await page('?after=0&limit=10'), { seqs: range(1, 10), more: true });
    assert.deepEqual(await page('?after=100'), { seqs: range(101, 120), more: false });
    assert.deepEqual(await page('?after=120'), { seqs: [], more: false });
    assert.deepEqual(await page('?after=10&before=16'), { seqs: range(11, 15), more: false });
    assert.deepEqual(await page('?after=10&before=100&limit=5'), { seqs: range(11, 15), more: true });
    assert.deepEqual(await page('?before=9999'), { seqs: range(71, 120), more: true });

    for (const q of ['?limit=0', '?limit=201', '?limit=abc', '?limit=', '?limit=-5', '?limit=1.5',
        '?before=abc', '?before=0', '?before=-1', '?after=x', '?after=-1', '?after=1e3']) {
        const res = await http.get(`/v1/rooms/${room.id}/messages${q}`, as(bob));
        assertApiError(res, 400, 'invalid_argument');
    }
    const msgs = (await http.get(`/v1/rooms/${room.id}/messages?after=0&limit=3`, as(bob))).json.messages;
    assert.deepEqual(msgs.map((m) => m.body), ['h1', 'h2', 'h3']);
});

test('read markers move forward only; unread counts', async () => {
    const room = await createRoom(alice, [bob]);
    for (let i = 0; i < 10; i++)
        assert.equal((await post(alice, room.id, `r${i}`)).status, 201);
    const bobsView = async () => (await http.get('/v1/rooms', as(bob))).json.rooms.find((r) => r.id === room.id);
    let v = await bobsView();
    assert.deepEqual([v.last_seq, v.read_seq, v.unread], [10, 0, 10]);
    // One's own messages are never unread.
    const alicesView = (await http.get('/v1/rooms', as(alice))).json.rooms.find((r) => r.id === room.id);
    assert.deepEqual([alicesView.read_seq, alicesView.unread], [10, 0]);

    const read = (seq, u = bob) => http.post(`/v1/rooms/${room.id}/read`, { seq }, as(u));
    let res = await read(6);
    assert.equal(res.status, 204, res.text);
    v = await bobsView();
    assert.deepEqual([v.read_seq, v.unread], [6, 4]);
    assert.equal((await read(3)).status, 204);          // backwards: accepted, ignored
    v = await bobsView();
    assert.equal(v.read_seq, 6);
    assert.equal((await read(1000)).status, 204);       // past the end: clamped
    v = await bobsView();
    assert.deepEqual([v.read_seq, v.unread], [10, 0]);
    assert.equal((await post(alice, room.id, 'one more')).status, 201);
    v = await bobsView();
    assert.deepEqual([v.last_seq, v.read_seq, v.unread], [11, 10, 1]);
    const show = await http.get(`/v1/rooms/${room.id}`, as(bob));
    assert.deepEqual([show.json.room.read_seq, show.json.room.unread], [10, 1]);

    for (const body of [{}, { seq: -1 }, { seq: 'x' }, { seq: 1.5 }])
        assertApiError(await http.post(`/v1/rooms/${room.id}/read`, body, as(bob)), 400, 'invalid_argument');
    assertApiError(await read(1, mallory), 403, 'forbidden');
});

test('metrics count stored messages and commit latency', async () => {
    const room = await createRoom(alice);
    assert.equal((await post(alice, room.id, 'metric')).status, 201);
    const res = await http.get('/metrics');
    assert.equal(res.status, 200);
    const stored = /^chatd_messages_stored_total (\d+)/m.exec(res.text);
    assert.ok(stored && Number(stored[1]) >= 1, 'chatd_messages_stored_total');
    assert.match(res.text, /^chatd_message_commit_latency_seconds_bucket\{le="\+Inf"\} [1-9]/m);
    assert.match(res.text, /^chatd_message_commit_batch_size_count [1-9]/m);
});

test('throughput of HTTP posts (reported, not asserted)', async () => {
    const room = await createRoom(alice, [bob]);
    const N = 1000, C = 50;
    let next = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: C }, async () => {
        while (next < N) {
            const i = next++;
            const res = await post(i % 2 ? alice : bob, room.id, `t${i}`, `t-${i}`);
            assert.equal(res.status, 201, res.text);
        }
    }));
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(`# ${N} HTTP posts with ${C} concurrent clients: ${(N / s).toFixed(0)} messages/s`);
    const stored = await allMessages(alice, room.id);
    assert.equal(stored.length, N);
});

test('sending is rate limited per user: 429 with Retry-After, nothing stored', async () => {
    const limited = await startServer({ config: '[limits]\nmessages_per_s = 1\nmessages_burst = 3\n' });
    try {
        const h = api(limited);
        const [u, v] = [await registerAndLogin(limited, uniqueName('rl')), await registerAndLogin(limited, uniqueName('rl'))];
        const room = (await h.post('/v1/rooms', { name: 'limited', members: [v.username] }, as(u))).json.room;
        const statuses = [];
        for (let i = 0; i < 5; i++) {
            const res = await h.post(`/v1/rooms/${room.id}/messages`, { body: `b${i}`, client_msg_id: `rl-${i}` }, as(u));
            statuses.push(res.status);
            if (res.status === 429) {
                assert.equal(res.json.error.code, 'rate_limited');
                assert.ok(Number(res.headers['retry-after']) >= 1, 'Retry-After in whole seconds');
            }
        }
        assert.deepEqual(statuses, [201, 201, 201, 429, 429]);
        // Another user has a budget of its own.
        const other = await h.post(`/v1/rooms/${room.id}/messages`, { body: 'mine' }, as(v));
        assert.equal(other.status, 201, other.text);
        const hist = await h.get(`/v1/rooms/${room.id}/messages`, as(u));
        assert.deepEqual(hist.json.messages.map((m) => m.seq), [1, 2, 3, 4]);
    } finally {
        await limited.stop();
    }
});
