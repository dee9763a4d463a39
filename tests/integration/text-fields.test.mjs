// text-fields.test.mjs: every user-chosen string refuses C0 and C1 controls, DEL, the
// bidirectional embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069) and
// bytes that are not UTF-8, through HTTP and WebSocket alike, with 400 / an
// `invalid_argument` error frame naming the field; message bodies keep tab and newline.
// Nothing refused is stored. The rule per field is in docs/api.md, "Text fields".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, request, registerUsers, uniqueName, assertApiError, wsConnect } from './lib/harness.mjs';

let server, http, alice, bob, room;

before(async () => {
    server = await startServer();
    http = api(server);
    [alice, bob] = await registerUsers(server, ['alice', 'bob']);
    const res = await http.post('/v1/rooms', { name: 'text', members: [bob.username] }, as(alice));
    assert.equal(res.status, 201, res.text);
    room = res.json.room;
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

const as = (u) => ({ token: u.access_token });

// Refused in every field: [what, the text in it, the expected words of the message].
const CONTROL = 'must not hold control characters';
const BIDI = 'must not hold bidirectional';
const REFUSED_EVERYWHERE = [
    ['a C0 control (ESC)', 'a\u001b[2Jb', CONTROL],
    ['carriage return', 'a\rb', CONTROL],
    ['vertical tab', 'a\u000bb', CONTROL],
    ['DEL', 'a\u007fb', CONTROL],
    ['C1 U+0080', 'a\u0080b', CONTROL],
    ['C1 U+0085 (NEL)', 'a\u0085b', CONTROL],
    ['C1 U+009B (CSI)', 'a\u009bb', CONTROL],
    ['C1 U+009F', 'a\u009fb', CONTROL],
    ['U+202A (LRE)', 'a\u202ab', BIDI],
    ['U+202E (RLO)', 'evil\u202etxt.exe', BIDI],
    ['U+2066 (LRI)', 'a\u2066b', BIDI],
    ['U+2069 (PDI)', 'a\u2069b', BIDI],
];
// Refused in single-line fields, kept in message bodies: the line breaks (U+2028 and
// U+2029 are breaks too, Unicode's UAX #14) and tab.
const LINES = [['newline', 'a\nb'], ['tab', 'a\tb'], ['U+2028 (line separator)', 'a\u2028b'],
    ['U+2029 (paragraph separator)', 'a\u2029b']];
// Next to the refused ranges, and right-to-left text: accepted everywhere.
const ACCEPTED = ['a\u00a0b', 'a\u2027b', 'a\u202fb', 'a\u061cb', 'a\u200eb', '\ufeffab', 'a\ufffeb', 'a\u2065b', 'a\u206ab', 'a\u200fb', '\u05e9\u05dc\u05d5\u05dd', 'caf\u00e9 \u2615'];

/** A JSON body whose `field` holds raw bytes that are not UTF-8 (0xC2 0x85 cut to 0x85). */
function rawInvalid(prefix, field, rest = '') {
    return Buffer.concat([Buffer.from(`{${prefix}"${field}":"a`), Buffer.from([0x85]), Buffer.from(`b"${rest}}`)]);
}

async function messages() {
    const res = await http.get(`/v1/rooms/${room.id}/messages?after=0&limit=200`, as(alice));
    assert.equal(res.status, 200, res.text);
    return res.json.messages;
}

function assertRefused(res, field, words) {
    assertApiError(res, 400, 'invalid_argument');
    assert.ok(res.json.error.message.startsWith(`${field} `), res.text);
    assert.ok(res.json.error.message.includes(words), res.text);
}

test('room names: controls, C1, bidi overrides, newlines and non-UTF-8 are 400 naming the field', async () => {
    for (const [what, text, words] of REFUSED_EVERYWHERE) {
        const res = await http.post('/v1/rooms', { name: text }, as(alice));
        assert.ok(res.json?.error?.message.includes(words), `${what}: ${res.text}`);
        assertRefused(res, 'name', words);
    }
    for (const [, text] of LINES)
        assertRefused(await http.post('/v1/rooms', { name: text }, as(alice)), 'name', CONTROL);
    const raw = await request(server, 'POST', '/v1/rooms', { body: rawInvalid('', 'name'), token: alice.access_token });
    assertRefused(raw, 'name', 'is not valid UTF-8');
    const list = await http.get('/v1/rooms', as(alice));
    assert.deepEqual(list.json.rooms.map((r) => r.name), ['text'], 'no refused room was made');
    for (const text of ACCEPTED) {
        const res = await http.post('/v1/rooms', { name: text }, as(alice));
        assert.equal(res.status, 201, `${JSON.stringify(text)}: ${res.text}`);
        assert.equal(res.json.room.name, text);
    }
});

test('message bodies over HTTP: tab and newline are kept, every other control and bidi override is 400', async () => {
    const before = (await messages()).length;
    for (const [, text, words] of REFUSED_EVERYWHERE) {
        const res = await http.post(`/v1/rooms/${room.id}/messages`, { body: text }, as(alice));
        assertRefused(res, 'body', words);
    }
    const raw = await request(server, 'POST', `/v1/rooms/${room.id}/messages`,
        { body: rawInvalid('', 'body'), token: alice.access_token });
    assertRefused(raw, 'body', 'is not valid UTF-8');
    assert.equal((await messages()).length, before, 'nothing refused was stored');
    const kept = 'line one\nline two\n\tindented\u2028line three\u2029next paragraph';
    const ok = await http.post(`/v1/rooms/${room.id}/messages`, { body: kept }, as(alice));
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.json.message.body, kept);
    for (const text of ACCEPTED) {
        const res = await http.post(`/v1/rooms/${room.id}/messages`, { body: text }, as(alice));
        assert.equal(res.status, 201, `${JSON.stringify(text)}: ${res.text}`);
    }
});

test('client_msg_id over HTTP: controls, newlines, C1, bidi overrides and non-UTF-8 are 400', async () => {
    const before = (await messages()).length;
    for (const [, text, words] of [...REFUSED_EVERYWHERE, ...LINES.map(([w, t]) => [w, t, CONTROL])]) {
        const res = await http.post(`/v1/rooms/${room.id}/messages`, { body: 'hi', client_msg_id: text }, as(alice));
        assertRefused(res, 'client_msg_id', words);
    }
    const raw = await request(server, 'POST', `/v1/rooms/${room.id}/messages`,
        { body: rawInvalid('"body":"hi",', 'client_msg_id'), token: alice.access_token });
    assertRefused(raw, 'client_msg_id', 'is not valid UTF-8');
    assert.equal((await messages()).length, before, 'nothing refused was stored');
    const ok = await http.post(`/v1/rooms/${room.id}/messages`, { body: 'hi', client_msg_id: 'k\u00e9y-\u05e9' }, as(alice));
    assert.equal(ok.status, 201, ok.text);
});

test('usernames: controls, C1 and bidi overrides are 400 on register, login and as members', async () => {
    for (const [, text] of [...REFUSED_EVERYWHERE, ...LINES]) {
        const name = `ab${text}`;
        const reg = await http.post('/v1/auth/register', { username: name, password: 'correct horse battery' });
        assertRefused(reg, 'username', 'must be 3 to 32 characters');
        // At login such a name is an unknown user (api.md): the same 401 as a wrong password.
        const login = await http.post('/v1/auth/login', { username: name, password: 'correct horse battery' });
        assertApiError(login, 401, 'unauthorized');
        const add = await http.post(`/v1/rooms/${room.id}/members`, { username: name }, as(alice));
        assertApiError(add, 400, 'invalid_argument');
        const mk = await http.post('/v1/rooms', { name: 'm', members: [name] }, as(alice));
        assertApiError(mk, 400, 'invalid_argument');
    }
});

test('WebSocket send: the same rule for body and client_msg_id, an error frame naming the field', async () => {
    const ws = await wsConnect(server, alice.access_token);
    try {
        await ws.next('hello', 30000);
        const before = (await messages()).length;
        const cases = [
            ...REFUSED_EVERYWHERE.map(([w, t, words]) => ({ body: t, field: 'body', words })),
            ...REFUSED_EVERYWHERE.map(([w, t, words]) => ({ body: 'hi', cmid: t, field: 'client_msg_id', words })),
            ...LINES.map(([w, t]) => ({ body: 'hi', cmid: t, field: 'client_msg_id', words: CONTROL })),
        ];
        let n = 0;
        for (const c of cases) {
            const tag = `ws-${++n}`;
            // A bad body is answered with the frame's own client_msg_id; a bad client_msg_id
            // is echoed as sent.
            const cmid = c.cmid ?? tag;
            ws.send({ type: 'send', room_id: room.id, body: c.body, client_msg_id: cmid });
            const err = await ws.next((f) => f.type === 'error' && f.client_msg_id === cmid, 10000);
            assert.equal(err.code, 'invalid_argument', JSON.stringify(err));
            assert.ok(err.message.startsWith(`${c.field} `) && err.message.includes(c.words), JSON.stringify(err));
        }
        // The connection keeps working, and tab and newline pass in a body.
        ws.send({ type: 'send', room_id: room.id, body: 'ws\tline\nnext', client_msg_id: 'ws-ok' });
        const ack = await ws.next({ type: 'ack', client_msg_id: 'ws-ok' }, 10000);
        assert.equal(ack.message.body, 'ws\tline\nnext');
        assert.equal((await messages()).length, before + 1, 'only the valid send was stored');
    } finally {
        ws.close();
    }
    // Raw bytes that are not UTF-8 in a text frame never reach the JSON: the WebSocket
    // layer closes with 1007 (protocol.md), and nothing is stored.
    const raw = await wsConnect(server, alice.access_token);
    await raw.next('hello', 30000);
    const count = (await messages()).length;
    raw.ws.send(Buffer.concat([Buffer.from(`{"type":"send","room_id":${room.id},"body":"a`),
        Buffer.from([0x85]), Buffer.from('b"}')]), { binary: false });
    let timer;
    const deadline = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('no close within 30 s')), 30000);
    });
    assert.equal((await Promise.race([raw.closed, deadline]).finally(() => clearTimeout(timer))).code, 1007);
    assert.equal((await messages()).length, count);
});

test('a refused text leaves the sender free to send a correct one with the same client_msg_id', async () => {
    const cmid = uniqueName('again');
    const bad = await http.post(`/v1/rooms/${room.id}/messages`, { body: 'x\u202ey', client_msg_id: cmid }, as(bob));
    assertRefused(bad, 'body', BIDI);
    const good = await http.post(`/v1/rooms/${room.id}/messages`, { body: 'xy', client_msg_id: cmid }, as(bob));
    assert.equal(good.status, 201, good.text);
    assert.equal(good.json.message.body, 'xy');
});
