// path-ids.test.mjs: an id in a path or a query string follows one rule on every route:
// a plain decimal integer from 1 up to 2^53 (the largest a JSON number holds exactly, as
// for ids in bodies). Anything else is 400 invalid_argument, never a 404 that would say
// "no such room" about an id no room can have.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, registerUsers, assertApiError } from './lib/harness.mjs';

let server, http, alice, bob, room;

before(async () => {
    server = await startServer();
    http = api(server);
    [alice, bob] = await registerUsers(server, ['alice', 'bob']);
    const res = await http.post('/v1/rooms', { name: 'ids', members: [bob.username] }, { token: alice.access_token });
    assert.equal(res.status, 201, res.text);
    room = res.json.room;
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

const MAX = '9007199254740992';                 // 2^53
const BAD = ['9007199254740993', '1234567890123456789', '9223372036854775807',
    '9223372036854775808', '99999999999999999999', 'abc', '0', '-1', '1.5', '+1', '01', '1e3', '%201'];

// Every route with an id in its path; {id} is replaced, {uid} is a member's id.
const ROUTES = [
    ['GET', '/v1/rooms/{id}'],
    ['GET', '/v1/rooms/{id}/messages'],
    ['POST', '/v1/rooms/{id}/messages', { body: 'hi' }],
    ['POST', '/v1/rooms/{id}/read', { seq: 1 }],
    ['POST', '/v1/rooms/{id}/members', { username: 'nobody_here' }],
    ['DELETE', '/v1/rooms/{id}/members/{uid}'],
    ['DELETE', '/v1/rooms/{room}/members/{id}'],
    ['DELETE', '/v1/push/subscriptions/{id}'],
];

function call(method, pattern, id, body) {
    const p = pattern.replace('{id}', id).replace('{uid}', String(bob.user.id)).replace('{room}', String(room.id));
    return http.request(method, p, { body, token: alice.access_token });
}

test('an id past 2^53, or not a plain positive decimal, is 400 on every route', async () => {
    for (const [method, pattern, body] of ROUTES) {
        for (const id of BAD) {
            const res = await call(method, pattern, id, body);
            assertApiError(res, 400, 'invalid_argument');
            assert.match(res.json.error.message, /invalid .*id/, `${method} ${pattern} ${id}: ${res.text}`);
        }
    }
});

test('an id of up to 2^53 that names nothing is 404', async () => {
    for (const [method, pattern, body] of ROUTES) {
        const res = await call(method, pattern, MAX, body);
        assertApiError(res, 404, 'not_found');
    }
});

test('query ids and seqs follow the same rule', async () => {
    const hist = (q) => http.get(`/v1/rooms/${room.id}/messages?${q}`, { token: alice.access_token });
    assert.equal((await hist(`before=${MAX}`)).status, 200);
    assert.equal((await hist(`after=${MAX}`)).status, 200);
    assert.equal((await hist('after=0')).status, 200);
    // One value, one spelling, as in paths: no leading zero (but 0 itself).
    for (const v of ['9007199254740993', '123456789012345678', '1234567890123456789', '01', '00', '0009']) {
        assertApiError(await hist(`before=${v}`), 400, 'invalid_argument');
        assertApiError(await hist(`after=${v}`), 400, 'invalid_argument');
    }
    assertApiError(await hist('limit=010'), 400, 'invalid_argument');
    const presence = (q) => http.get(`/v1/presence?user_ids=${q}`, { token: alice.access_token });
    const ok = await presence(`${bob.user.id},${MAX}`);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json.presence.map((p) => p.user_id), [bob.user.id]);
    for (const q of ['9007199254740993', '9223372036854775807', '99999999999999999999', '%2B1', '%201',
        `0${bob.user.id}`, `${bob.user.id},0${bob.user.id}`, `${'0'.repeat(40)}${bob.user.id}`,
        `${bob.user.id},`, `,${bob.user.id}`, `${bob.user.id},,1`, '0', '-1', '1.5', '']) {
        const res = await presence(q);
        assertApiError(res, 400, 'invalid_argument');
    }
});
