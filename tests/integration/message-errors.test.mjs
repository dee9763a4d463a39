// message-errors.test.mjs: the words a refused message is answered with, exactly,
// over HTTP (400 and its text) and over WebSocket (an error frame with code, message
// and the send's client_msg_id). One validation serves both; each says the fault in
// its own words (the body's length: HTTP names the limit, the frame does not).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, registerUsers, uniqueName, wsConnect } from './lib/harness.mjs';

let server, http, alice, bob, room, lonely;

before(async () => {
    server = await startServer({ config: '[message]\nmax_body_bytes = 4096\n' });
    http = api(server);
    [alice, bob] = await registerUsers(server, ['alice', 'bob']);
    room = (await http.post('/v1/rooms', { name: uniqueName('r'), members: [bob.username] }, as(alice))).json.room;
    lonely = (await http.post('/v1/rooms', { name: uniqueName('l') }, as(bob))).json.room;
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

const as = (u) => ({ token: u.access_token });
const BIDI = 'must not hold bidirectional embeddings, overrides or isolates (U+202A..U+202E, U+2066..U+2069)';

// [the send, the words over HTTP, the words over WebSocket (undefined: as HTTP's)]
const REFUSED = [
    [{ body: '' }, 'body must not be empty'],
    [{ body: 'x'.repeat(4097) }, 'body is longer than 4096 bytes', 'body is too long'],
    [{ body: 'a\rb' }, 'body must not hold control characters other than tab and newline'],
    [{ body: 'a\u202eb' }, `body ${BIDI}`],
    [{ body: 'ok', client_msg_id: '' }, 'client_msg_id must be 1 to 128 bytes'],
    [{ body: 'ok', client_msg_id: 'x'.repeat(129) }, 'client_msg_id must be 1 to 128 bytes'],
    [{ body: 'ok', client_msg_id: 'a\nb' }, 'client_msg_id must not hold control characters'],
    [{ body: 'ok', client_msg_id: 'a\u2066b' }, `client_msg_id ${BIDI}`],
];

test('HTTP: each refusal is 400 invalid_argument with its text, and nothing is stored', async () => {
    const url = `/v1/rooms/${room.id}/messages`;
    const more = [
        [{}, 'body must be a string'], [{ body: 5 }, 'body must be a string'],
        [{ body: null }, 'body must be a string'], [{ body: 'ok', client_msg_id: 7 }, 'client_msg_id must be a string'],
        [{ body: '', client_msg_id: 7 }, 'body must not be empty'],   // the body is checked first
    ];
    for (const [send, words] of [...REFUSED, ...more]) {
        const res = await http.post(url, send, as(alice));
        assert.equal(res.status, 400, res.text);
        assert.deepEqual(res.json, { error: { code: 'invalid_argument', message: words } }, JSON.stringify(send).slice(0, 80));
    }
    const bad = await http.post('/v1/rooms/0/messages', { body: 'x' }, as(alice));
    assert.deepEqual([bad.status, bad.json.error.message], [400, 'invalid room id']);
    const none = await http.post('/v1/rooms/999999/messages', { body: 'x' }, as(alice));
    assert.deepEqual([none.status, none.json.error], [404, { code: 'not_found', message: 'room not found' }]);
    const out = await http.post(`/v1/rooms/${lonely.id}/messages`, { body: 'x' }, as(alice));
    assert.deepEqual([out.status, out.json.error], [403, { code: 'forbidden', message: 'not a member of this room' }]);
    const hist = await http.get(`/v1/rooms/${room.id}/messages`, as(alice));
    assert.equal(hist.json.messages.length, 0);
});

test('WebSocket: each refusal is an error frame with the same code and its words', async () => {
    const ws = await wsConnect(server, alice.access_token);
    let i = 0;
    for (const [send, httpWords, wsWords] of REFUSED) {
        const cmid = send.client_msg_id ?? `e${i++}`;
        ws.send({ type: 'send', room_id: room.id, ...send, client_msg_id: cmid });
        const f = await ws.next((x) => x.type === 'error' || x.type === 'ack', 10000);
        assert.deepEqual(f, { type: 'error', code: 'invalid_argument', message: wsWords ?? httpWords, client_msg_id: cmid });
    }
    ws.send({ type: 'send', room_id: lonely.id, body: 'x', client_msg_id: 'w-out' });
    assert.deepEqual(await ws.next({ client_msg_id: 'w-out' }, 10000),
        { type: 'error', code: 'forbidden', message: 'not a member of this room', client_msg_id: 'w-out' });
    ws.send({ type: 'send', room_id: 999999, body: 'x', client_msg_id: 'w-none' });
    assert.deepEqual(await ws.next({ client_msg_id: 'w-none' }, 10000),
        { type: 'error', code: 'not_found', message: 'room not found', client_msg_id: 'w-none' });
    // A client_msg_id used in another room by the same sender.
    ws.send({ type: 'send', room_id: room.id, body: 'first', client_msg_id: 'w-dup' });
    await ws.next({ type: 'ack', client_msg_id: 'w-dup' }, 10000);
    const other = (await http.post('/v1/rooms', { name: uniqueName('o') }, as(alice))).json.room;
    ws.send({ type: 'send', room_id: other.id, body: 'again', client_msg_id: 'w-dup' });
    assert.deepEqual(await ws.next({ type: 'error', client_msg_id: 'w-dup' }, 10000),
        { type: 'error', code: 'conflict', message: 'client_msg_id was already used in another room', client_msg_id: 'w-dup' });
    await ws.close();
});
