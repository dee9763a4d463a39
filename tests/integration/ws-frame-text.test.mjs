// ws-frame-text.test.mjs: the exact text of the server frames the bus's events become
// (ack, message, error, typing, read, room, presence, a sync's replay): keys in the
// order docs/protocol.md shows, strings escaped as the examples escape them, no key
// more or less. Clients that compare frames as text, or parse them with a streaming
// parser expecting this order, see the same bytes whatever carries the events inside.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, api, registerUsers, uniqueName } from './lib/harness.mjs';

let server, http, alice, bob, carol;
const T = 10000;

before(async () => {
    server = await startServer();
    http = api(server);
    [alice, bob, carol] = await registerUsers(server, ['alice', 'bob', 'carol']);
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

const as = (u) => ({ token: u.access_token });

/** A connection keeping every text frame as it came, unparsed. */
function rawConnect(user) {
    const ws = new WebSocket(`ws://${server.host}:${server.port}/v1/ws`,
        { headers: { Authorization: `Bearer ${user.access_token}` } });
    const texts = [];
    const waiters = [];
    ws.on('message', (data, isBinary) => {
        assert.equal(isBinary, false);
        texts.push(data.toString('utf8'));
        for (const w of waiters.splice(0))
            w();
    });
    const conn = {
        ws, texts,
        /** The first unread text frame of this type (its raw text); removes it. */
        async next(type) {
            const deadline = Date.now() + T;
            for (;;) {
                const i = texts.findIndex((t) => JSON.parse(t).type === type);
                if (i >= 0)
                    return texts.splice(i, 1)[0];
                if (Date.now() > deadline)
                    throw new Error(`no ${type} frame within ${T} ms: ${texts.join('\n').slice(0, 2000)}`);
                await new Promise((resolve) => {
                    waiters.push(resolve);
                    setTimeout(resolve, 200);
                });
            }
        },
        send: (obj) => ws.send(JSON.stringify(obj)),
        close: () => new Promise((resolve) => { ws.once('close', resolve); ws.close(); }),
    };
    return new Promise((resolve, reject) => {
        ws.once('open', async () => {
            await conn.next('hello');
            resolve(conn);
        });
        ws.once('error', reject);
    });
}

/** text is exactly want serialized in its key order (JSON.stringify escapes as cJSON
 * does: \" \\ \b \f \n \r \t, \u00xx below 0x20, everything else as it is). */
function assertText(text, want) {
    assert.equal(text, JSON.stringify(want));
}

function isTime(v) {
    return Number.isInteger(v) && Math.abs(v - Date.now()) < 10 * 60 * 1000;
}

async function createRoom(owner, members) {
    const res = await http.post('/v1/rooms', { name: uniqueName('room'), members: members.map((m) => m.username) },
        as(owner));
    assert.equal(res.status, 201, res.text);
    return res.json.room;
}

const BODY = 'h\u00e9 "q" \\ \n\t/ \u4e2d \u{1f600} <\u2028>';

function msgOf(text) {
    const m = JSON.parse(text).message;
    assert.ok(isTime(m.created_at), text);
    return m;
}

test('ack and message frames: the message in MSG order, client_msg_id null when none', async () => {
    const room = await createRoom(alice, [bob]);
    const [a, b] = await Promise.all([rawConnect(alice), rawConnect(bob)]);
    a.send({ type: 'send', room_id: room.id, body: BODY, client_msg_id: 'c"1\\' });
    const ack = await a.next('ack');
    const m = msgOf(ack);
    const want = {
        id: m.id, room_id: room.id, seq: 1, sender_id: alice.user.id, sender: alice.username,
        body: BODY, client_msg_id: 'c"1\\', created_at: m.created_at,
    };
    assertText(ack, { type: 'ack', client_msg_id: 'c"1\\', message: want });
    assertText(await b.next('message'), { type: 'message', message: want });

    a.send({ type: 'send', room_id: room.id, body: 'plain' });
    const ack2 = await a.next('ack');
    const m2 = msgOf(ack2);
    const want2 = {
        id: m2.id, room_id: room.id, seq: 2, sender_id: alice.user.id, sender: alice.username,
        body: 'plain', client_msg_id: null, created_at: m2.created_at,
    };
    assertText(ack2, { type: 'ack', message: want2 });
    assertText(await b.next('message'), { type: 'message', message: want2 });

    // A repeat of the first client_msg_id: acked with the first message, not delivered again.
    a.send({ type: 'send', room_id: room.id, body: 'again', client_msg_id: 'c"1\\' });
    assertText(await a.next('ack'), { type: 'ack', client_msg_id: 'c"1\\', message: want });
    a.send({ type: 'send', room_id: room.id, body: 'third' });
    await a.next('ack');
    assert.equal(JSON.parse(await b.next('message')).message.body, 'third');
    await Promise.all([a.close(), b.close()]);
});

test('a refused send: the error frame with code, message and client_msg_id', async () => {
    const room = await createRoom(bob, []);
    const a = await rawConnect(alice);
    a.send({ type: 'send', room_id: room.id, body: 'let me in', client_msg_id: 'x1' });
    const text = await a.next('error');
    const e = JSON.parse(text);
    assert.equal(e.code, 'forbidden', text);
    assertText(text, { type: 'error', code: 'forbidden', message: e.message, client_msg_id: 'x1' });
    await a.close();
});

test('typing and read frames', async () => {
    const room = await createRoom(alice, [bob]);
    const [a, b] = await Promise.all([rawConnect(alice), rawConnect(bob)]);
    a.send({ type: 'typing', room_id: room.id });
    assertText(await b.next('typing'), { type: 'typing', room_id: room.id, user_id: alice.user.id });
    a.send({ type: 'send', room_id: room.id, body: 'x' });
    await a.next('ack');
    b.send({ type: 'read', room_id: room.id, seq: 1 });
    assertText(await a.next('read'), { type: 'read', room_id: room.id, user_id: bob.user.id, seq: 1 });
    await Promise.all([a.close(), b.close()]);
});

test('room frames: the room with its members, then the user', async () => {
    const room = await createRoom(alice, [bob]);
    const a = await rawConnect(alice);
    const add = await http.post(`/v1/rooms/${room.id}/members`, { username: carol.username }, as(alice));
    assert.equal(add.status, 204, add.text);
    const joined = await a.next('room');
    const members = [alice, bob, carol].map((u) => ({ id: u.user.id, username: u.username }))
        .sort((x, y) => x.id - y.id);
    const r = JSON.parse(joined).room;
    assert.deepEqual(r.members.map((x) => x.id).sort((x, y) => x - y), members.map((x) => x.id));
    const roomWant = (mem) => ({
        id: room.id, name: room.name, kind: 'group', owner_id: alice.user.id,
        created_at: room.created_at, last_seq: 0, members: mem,
    });
    assertText(joined, { type: 'room', event: 'joined', room: roomWant(r.members), user_id: carol.user.id });
    const del = await http.del(`/v1/rooms/${room.id}/members/${carol.user.id}`, as(carol));
    assert.equal(del.status, 204, del.text);
    const left = await a.next('room');
    assertText(left, { type: 'room', event: 'left', room: roomWant(JSON.parse(left).room.members),
        user_id: carol.user.id });
    assert.equal(JSON.parse(left).room.members.length, 3);   // the leaver still listed
    await a.close();
});

test('presence frames: user, status, last_seen_at', async () => {
    const [dora, ed] = await registerUsers(server, ['dora', 'ed']);
    await createRoom(dora, [ed]);
    const a = await rawConnect(dora);
    const e = await rawConnect(ed);
    const on = await a.next('presence');
    const p = JSON.parse(on);
    assert.ok(isTime(p.last_seen_at), on);
    assertText(on, { type: 'presence', user_id: ed.user.id, status: 'online', last_seen_at: p.last_seen_at });
    await e.close();
    const off = await a.next('presence');
    const q = JSON.parse(off);
    assert.ok(isTime(q.last_seen_at), off);
    assertText(off, { type: 'presence', user_id: ed.user.id, status: 'offline', last_seen_at: q.last_seen_at });
    await a.close();
});

test('a sync replays the messages as the live frames had them, then synced', async () => {
    const room = await createRoom(alice, [bob]);
    const a = await rawConnect(alice);
    const sent = [];
    for (const [i, body] of [BODY, 'two'].entries()) {
        a.send({ type: 'send', room_id: room.id, body, client_msg_id: i ? undefined : 'k1' });
        sent.push(msgOf(await a.next('ack')));
    }
    const b = await rawConnect(bob);
    b.send({ type: 'sync', rooms: { [room.id]: 0 } });
    for (const m of sent) {
        assertText(await b.next('message'), { type: 'message', message: {
            id: m.id, room_id: room.id, seq: m.seq, sender_id: alice.user.id, sender: alice.username,
            body: m.body, client_msg_id: m.client_msg_id, created_at: m.created_at,
        } });
    }
    assert.equal(await b.next('synced'), '{"type":"synced"}');
    await Promise.all([a.close(), b.close()]);
});
