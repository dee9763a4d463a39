// rooms.test.mjs: rooms, members and direct rooms through HTTP. Authorization first:
// a non-member gets 403 on every route of a room that exists, anyone gets 404 for one
// that does not, and nothing of a room (members, messages) leaks to a non-member.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, registerAndLogin, uniqueName, assertApiError, registerUsers } from './lib/harness.mjs';

let server, http, alice, bob, carol, mallory;

before(async () => {
    server = await startServer();
    http = api(server);
    [alice, bob, carol, mallory] = await registerUsers(server, ['alice', 'bob', 'carol', 'mallory']);
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

const as = (u) => ({ token: u.access_token });

async function createRoom(owner, name, members = []) {
    const res = await http.post('/v1/rooms', { name, members: members.map((m) => m.username) }, as(owner));
    assert.equal(res.status, 201, res.text);
    return res.json.room;
}

// Every route of a room, as [method, path, body].
function roomRoutes(id, otherUserId) {
    return [
        ['GET', `/v1/rooms/${id}`],
        ['GET', `/v1/rooms/${id}/messages`],
        ['GET', `/v1/rooms/${id}/messages?after=0&limit=10`],
        ['POST', `/v1/rooms/${id}/messages`, { body: 'hi', client_msg_id: `x-${id}` }],
        ['POST', `/v1/rooms/${id}/members`, { username: 'nobody_at_all' }],
        ['DELETE', `/v1/rooms/${id}/members/${otherUserId}`],
        ['POST', `/v1/rooms/${id}/read`, { seq: 1 }],
    ];
}

test('a non-member gets 403 on every room route, an unknown room 404', async () => {
    const room = await createRoom(alice, 'secret plans', [bob]);
    const post = await http.post(`/v1/rooms/${room.id}/messages`, { body: 'the secret' }, as(alice));
    assert.equal(post.status, 201, post.text);

    for (const [method, path, body] of roomRoutes(room.id, bob.user.id)) {
        const res = await http.request(method, path, { ...as(mallory), body });
        assertApiError(res, 403, 'forbidden');
        assert.ok(!res.text.includes('the secret'), `${method} ${path} leaked a message`);
        assert.ok(!res.text.includes(bob.username), `${method} ${path} leaked a member`);
    }
    for (const [method, path, body] of roomRoutes(987654321, bob.user.id)) {
        const res = await http.request(method, path, { ...as(mallory), body });
        assertApiError(res, 404, 'not_found');
    }
    // The non-member's list does not show it, and nothing was changed by the attempts.
    const list = await http.get('/v1/rooms', as(mallory));
    assert.equal(list.status, 200);
    assert.ok(!list.json.rooms.some((r) => r.id === room.id));
    const show = await http.get(`/v1/rooms/${room.id}`, as(alice));
    assert.deepEqual(show.json.room.members.map((m) => m.id).sort(),
        [alice.user.id, bob.user.id].sort());
    const hist = await http.get(`/v1/rooms/${room.id}/messages`, as(bob));
    assert.equal(hist.json.messages.length, 1);
});

test('every room route needs a token', async () => {
    const room = await createRoom(alice, 'tokens');
    const routes = [['GET', '/v1/rooms'], ['POST', '/v1/rooms', { name: 'x' }],
        ['POST', '/v1/dm', { username: bob.username }], ...roomRoutes(room.id, bob.user.id)];
    for (const [method, path, body] of routes) {
        const res = await http.request(method, path, { body });
        assertApiError(res, 401, 'unauthorized');
        const forged = await http.request(method, path, { body, token: 'e30.e30.e30' });
        assertApiError(forged, 401, 'unauthorized');
    }
});

test('bad room and user ids are 400', async () => {
    for (const id of ['abc', '0', '-1', '1.5', '99999999999999999999999']) {
        assertApiError(await http.get(`/v1/rooms/${id}`, as(alice)), 400, 'invalid_argument');
        assertApiError(await http.get(`/v1/rooms/${id}/messages`, as(alice)), 400, 'invalid_argument');
        assertApiError(await http.post(`/v1/rooms/${id}/messages`, { body: 'x' }, as(alice)), 400, 'invalid_argument');
        assertApiError(await http.post(`/v1/rooms/${id}/read`, { seq: 1 }, as(alice)), 400, 'invalid_argument');
    }
    const room = await createRoom(alice, 'ids');
    assertApiError(await http.del(`/v1/rooms/${room.id}/members/abc`, as(alice)), 400, 'invalid_argument');
});

test('create a room: the caller owns it and is a member; members by username', async () => {
    const res = await http.post('/v1/rooms',
        { name: 'Team ☕', members: [bob.username.toUpperCase(), carol.username, bob.username, alice.username] },
        as(alice));
    assert.equal(res.status, 201, res.text);
    const room = res.json.room;
    assert.equal(typeof room.id, 'number');
    assert.equal(room.name, 'Team ☕');
    assert.equal(room.kind, 'group');
    assert.equal(room.owner_id, alice.user.id);
    assert.equal(typeof room.created_at, 'number');
    assert.ok(Math.abs(room.created_at - Date.now()) < 60000);
    assert.equal(room.last_seq, 0);
    assert.deepEqual(room.members.map((m) => m.id).sort((a, b) => a - b),
        [alice.user.id, bob.user.id, carol.user.id].sort((a, b) => a - b));
    assert.ok(room.members.every((m) => typeof m.username === 'string'));

    for (const u of [alice, bob, carol]) {
        const show = await http.get(`/v1/rooms/${room.id}`, as(u));
        assert.equal(show.status, 200, show.text);
        assert.equal(show.json.room.members.length, 3);
        const list = await http.get('/v1/rooms', as(u));
        const mine = list.json.rooms.find((r) => r.id === room.id);
        assert.ok(mine, 'the room is in every member\'s list');
        assert.equal(mine.last_seq, 0);
        assert.equal(mine.read_seq, 0);
        assert.equal(mine.unread, 0);
    }
    // No members: a room of one.
    const solo = await createRoom(alice, 'solo');
    assert.equal(solo.owner_id, alice.user.id);
});

test('create a room: bad input', async () => {
    const cases = [
        [{}, 400, 'invalid_argument'],
        [{ name: '' }, 400, 'invalid_argument'],
        [{ name: 42 }, 400, 'invalid_argument'],
        [{ name: 'x'.repeat(101) }, 400, 'invalid_argument'],
        [{ name: 'a\nb' }, 400, 'invalid_argument'],
        [{ name: 'ok', members: 'bob' }, 400, 'invalid_argument'],
        [{ name: 'ok', members: [1, 2] }, 400, 'invalid_argument'],
        [{ name: 'ok', members: ['no spaces allowed'] }, 400, 'invalid_argument'],
        [{ name: 'ok', members: ['nosuchuser_zz9', bob.username] }, 404, 'not_found'],
    ];
    for (const [body, status, code] of cases) {
        const res = await http.post('/v1/rooms', body, as(alice));
        assertApiError(res, status, code);
    }
    const unknown = await http.post('/v1/rooms', { name: 'ok', members: ['nosuchuser_zz9'] }, as(alice));
    assert.match(unknown.json.error.message, /nosuchuser_zz9/);
    const notJson = await http.post('/v1/rooms', '{"name":', as(alice));
    assertApiError(notJson, 400, 'invalid_argument');
    // Nothing half-made: alice has no room named 'ok'.
    const list = await http.get('/v1/rooms', as(alice));
    assert.ok(!list.json.rooms.some((r) => r.name === 'ok'));
});

test('add members: the owner only, by username', async () => {
    const room = await createRoom(alice, 'adders', [bob]);
    assertApiError(await http.post(`/v1/rooms/${room.id}/members`, { username: carol.username }, as(bob)),
        403, 'forbidden');
    assertApiError(await http.post(`/v1/rooms/${room.id}/members`, { username: 'nosuchuser_zz9' }, as(alice)),
        404, 'not_found');
    assertApiError(await http.post(`/v1/rooms/${room.id}/members`, {}, as(alice)), 400, 'invalid_argument');
    // A non-member learns nothing about which usernames exist.
    assertApiError(await http.post(`/v1/rooms/${room.id}/members`, { username: 'nosuchuser_zz9' }, as(mallory)),
        403, 'forbidden');

    let res = await http.post(`/v1/rooms/${room.id}/members`, { username: carol.username }, as(alice));
    assert.equal(res.status, 204, res.text);
    assert.equal(res.text, '');
    res = await http.post(`/v1/rooms/${room.id}/members`, { username: carol.username }, as(alice));
    assert.equal(res.status, 204, 'adding a member twice is harmless');
    const show = await http.get(`/v1/rooms/${room.id}`, as(carol));
    assert.equal(show.status, 200);
    assert.equal(show.json.room.members.length, 3);
});

test('remove members: the owner removes anyone, a member removes itself', async () => {
    const room = await createRoom(alice, 'leavers', [bob, carol]);
    assertApiError(await http.del(`/v1/rooms/${room.id}/members/${carol.user.id}`, as(bob)), 403, 'forbidden');
    assertApiError(await http.del(`/v1/rooms/${room.id}/members/${mallory.user.id}`, as(alice)), 404, 'not_found');

    let res = await http.del(`/v1/rooms/${room.id}/members/${carol.user.id}`, as(carol));
    assert.equal(res.status, 204, res.text);
    assertApiError(await http.get(`/v1/rooms/${room.id}`, as(carol)), 403, 'forbidden');
    assertApiError(await http.get(`/v1/rooms/${room.id}/messages`, as(carol)), 403, 'forbidden');
    assertApiError(await http.post(`/v1/rooms/${room.id}/messages`, { body: 'back?' }, as(carol)), 403, 'forbidden');

    res = await http.del(`/v1/rooms/${room.id}/members/${bob.user.id}`, as(alice));
    assert.equal(res.status, 204, res.text);
    const list = await http.get('/v1/rooms', as(bob));
    assert.ok(!list.json.rooms.some((r) => r.id === room.id));
});

test('when the owner leaves, the longest-standing member owns the room', async () => {
    const room = await createRoom(alice, 'heirs', [bob]);
    const res = await http.del(`/v1/rooms/${room.id}/members/${alice.user.id}`, as(alice));
    assert.equal(res.status, 204, res.text);
    const show = await http.get(`/v1/rooms/${room.id}`, as(bob));
    assert.equal(show.json.room.owner_id, bob.user.id);
    const add = await http.post(`/v1/rooms/${room.id}/members`, { username: carol.username }, as(bob));
    assert.equal(add.status, 204, add.text);
});

test('direct rooms: one per pair, whoever asks first, race-safe', async () => {
    const [d1, d2] = [await registerAndLogin(server), await registerAndLogin(server)];
    // Both sides ask at once, several times.
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) =>
        http.post('/v1/dm', { username: (i % 2 ? d1 : d2).username.toUpperCase() }, as(i % 2 ? d2 : d1))));
    for (const a of answers)
        assert.equal(a.status, 200, a.text);
    const ids = new Set(answers.map((a) => a.json.room.id));
    assert.equal(ids.size, 1, 'one direct room for the pair');
    const room = answers[0].json.room;
    assert.equal(room.kind, 'direct');
    assert.deepEqual(room.members.map((m) => m.id).sort((a, b) => a - b),
        [d1.user.id, d2.user.id].sort((a, b) => a - b));

    // It is in both lists, with its members, and works as a room.
    for (const u of [d1, d2]) {
        const list = await http.get('/v1/rooms', as(u));
        const mine = list.json.rooms.filter((r) => r.kind === 'direct');
        assert.equal(mine.length, 1);
        assert.equal(mine[0].members.length, 2);
    }
    const msg = await http.post(`/v1/rooms/${room.id}/messages`, { body: 'hey' }, as(d1));
    assert.equal(msg.status, 201, msg.text);
    const again = await http.post('/v1/dm', { username: d1.username }, as(d2));
    assert.equal(again.json.room.id, room.id);
    assert.equal(again.json.room.last_seq, 1);
    assert.equal(again.json.room.unread, 1);

    // Its members are fixed; outsiders are still outsiders.
    assertApiError(await http.post(`/v1/rooms/${room.id}/members`, { username: carol.username }, as(d1)),
        400, 'invalid_argument');
    assertApiError(await http.del(`/v1/rooms/${room.id}/members/${d2.user.id}`, as(d1)),
        400, 'invalid_argument');
    assertApiError(await http.get(`/v1/rooms/${room.id}`, as(mallory)), 403, 'forbidden');
});

test('direct rooms: bad input', async () => {
    assertApiError(await http.post('/v1/dm', { username: alice.username }, as(alice)), 400, 'invalid_argument');
    assertApiError(await http.post('/v1/dm', { username: 'nosuchuser_zz9' }, as(alice)), 404, 'not_found');
    assertApiError(await http.post('/v1/dm', {}, as(alice)), 400, 'invalid_argument');
    assertApiError(await http.post('/v1/dm', { username: 7 }, as(alice)), 400, 'invalid_argument');
});
