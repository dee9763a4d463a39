// A JSON string escape \u0000 in any request body is refused with 400, never cut short:
// a password "secret\u0000..." must not be stored as "secret".
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { api, assertApiError, registerAndLogin, startServer, uniqueName, wsConnect } from './lib/harness.mjs';

let server, http, alice;

before(async () => {
    server = await startServer();
    http = api(server);
    alice = await registerAndLogin(server, uniqueName('nul'));
});
after(() => server?.stop());

// Raw bodies: JSON.stringify would escape the backslash of a literal "\u0000".
const raw = (text) => text;

test('an escaped NUL in a register, login, room or push body is 400, and nothing is made', async () => {
    const name = uniqueName('nulreg');
    const cases = [
        ['/v1/auth/register', `{"username":"${name}","password":"password\\u0000rest-of-it"}`],
        ['/v1/auth/register', `{"username":"${name}\\u0000x","password":"password123"}`],
        ['/v1/auth/login', `{"username":"${alice.username}","password":"${alice.password}\\u0000x"}`],
        ['/v1/rooms', '{"name":"ab\\u0000cd"}'],
        ['/v1/dm', `{"username":"${alice.username}\\u0000x"}`],
        ['/v1/push/subscriptions', '{"endpoint":"https://push.example\\u0000.org/x","keys":{}}'],
    ];
    for (const [p, body] of cases) {
        const res = await http.post(p, raw(body), { token: alice.access_token });
        assertApiError(res, 400, 'invalid_argument');
        assert.match(res.json.error.message, /NUL/, `${p} ${body}`);
    }
    // Neither the truncated name nor the full one was registered.
    const again = await http.post('/v1/auth/register', { username: name, password: 'password123' });
    assert.equal(again.status, 201, again.text);
    const rooms = await http.get('/v1/rooms', { token: alice.access_token });
    assert.deepEqual(rooms.json.rooms.filter((r) => r.name === 'ab'), []);
});

test('an escaped backslash before u0000 is text, not a NUL', async () => {
    const res = await http.post('/v1/rooms', raw('{"name":"a\\\\u0000b"}'), { token: alice.access_token });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.room.name, 'a\\u0000b');
});

test('a WebSocket frame with an escaped NUL gets an error frame and stores nothing', async () => {
    const room = (await http.post('/v1/rooms', { name: uniqueName('nulws') }, { token: alice.access_token })).json.room;
    const ws = await wsConnect(server, alice.access_token);
    await ws.next('hello');
    // Two ids that cJSON would both cut to "zz": neither may stand for the other.
    ws.send(`{"type":"send","room_id":${room.id},"body":"hello","client_msg_id":"zz\\u0000one"}`);
    const err = await ws.next('error');
    assert.equal(err.code, 'invalid_argument');
    ws.send(`{"type":"send","room_id":${room.id},"body":"a\\u0000b","client_msg_id":"n1"}`);
    assert.equal((await ws.next('error')).code, 'invalid_argument');
    ws.send({ type: 'send', room_id: room.id, body: 'other', client_msg_id: 'zz' });
    const ack = await ws.next('ack');
    assert.equal(ack.client_msg_id, 'zz');
    const hist = await http.get(`/v1/rooms/${room.id}/messages`, { token: alice.access_token });
    assert.deepEqual(hist.json.messages.map((m) => m.body), ['other']);
    await ws.close();
});
