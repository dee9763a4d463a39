// login-throttle.test.mjs: the per-username lockout holds for the addresses that failed
// for the username, not for its owner elsewhere. Behind a trusted proxy each
// X-Forwarded-For value is its own client address (see proxy.test.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request, registerAndLogin, uniqueName, assertApiError } from './lib/harness.mjs';

const PASSWORD = 'correct horse battery';
let server;

before(async () => {
    server = await startServer({ config: '[server]\ntrust_proxy = yes\n[limits]\nlogin_failures_per_min = 3\n' });
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

// Bursts of logins queue for the password hash on a loaded machine: a generous deadline.
function login(username, password, address) {
    return request(server, 'POST', '/v1/auth/login', {
        body: { username, password }, headers: { 'X-Forwarded-For': address }, timeout: 60000,
    });
}

async function metric(name) {
    const text = (await request(server, 'GET', '/metrics')).text;
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line ? Number(line.split(' ')[1]) : 0;
}

test('failures from A, B and C lock them out; the right password from D gets in', async () => {
    const { username } = await registerAndLogin(server, uniqueName('thr'), PASSWORD);
    const guessers = ['198.51.100.1', '198.51.100.2', '198.51.100.3'];
    // Two wrong guesses from each: six failures, the username is locked after three.
    let refused = 0;
    for (const a of guessers) {
        for (let i = 0; i < 2; i++) {
            const r = await login(username, 'wrong password', a);
            assert.ok(r.status === 401 || r.status === 429, r.text);
            refused += r.status === 429;
        }
    }
    assert.ok(refused >= 1, 'the username was locked while A, B and C guessed');
    // Every guessing address stays locked out, even with the right password.
    for (const a of guessers) {
        assertApiError(await login(username, 'wrong password', a), 429, 'rate_limited');
        const r = await login(username, PASSWORD, a);
        assertApiError(r, 429, 'rate_limited');
        assert.ok(Number(r.headers['retry-after']) >= 1, r.headers['retry-after']);
    }
    // D never failed for this username: its correct password is let through ...
    const ok = await login(username, PASSWORD, '203.0.113.4');
    assert.equal(ok.status, 200, ok.text);
    assert.ok(ok.json.access_token);
    // ... and D's success ends no lockout of the guessers.
    assertApiError(await login(username, PASSWORD, guessers[0]), 429, 'rate_limited');
    // D again, and a new address E, with the right password: both fine.
    assert.equal((await login(username, PASSWORD, '203.0.113.4')).status, 200);
    assert.equal((await login(username, PASSWORD, '203.0.113.5')).status, 200);
});

test('a wrong password from a new address counts: that address waits from then on', async () => {
    const { username } = await registerAndLogin(server, uniqueName('thr'), PASSWORD);
    for (let i = 0; i < 3; i++)
        assert.equal((await login(username, 'wrong password', '198.51.100.20')).status, 401);
    assertApiError(await login(username, PASSWORD, '198.51.100.20'), 429, 'rate_limited');
    // D's one try while the username is locked is a wrong password: answered 401 ...
    assertApiError(await login(username, 'wrong again', '203.0.113.21'), 401, 'unauthorized');
    // ... and counted: D now waits like the other guessers, even with the right password.
    assertApiError(await login(username, PASSWORD, '203.0.113.21'), 429, 'rate_limited');
    // An address with no failures is still let in.
    assert.equal((await login(username, PASSWORD, '203.0.113.22')).status, 200);
});

test('many addresses get one guess each while the username is locked', async () => {
    const { username } = await registerAndLogin(server, uniqueName('thr'), PASSWORD);
    for (let i = 0; i < 3; i++)
        await login(username, 'wrong password', `198.51.100.${40 + i}`);
    const before = await metric('chatd_logins_total{result="bad_credentials"}');
    // Ten addresses, three guesses each: only the first guess of each reaches the password.
    const statuses = [];
    for (let a = 0; a < 10; a++)
        for (let i = 0; i < 3; i++)
            statuses.push((await login(username, `guess ${a}.${i}`, `192.0.2.${a + 1}`)).status);
    for (let a = 0; a < 10; a++)
        assert.deepEqual(statuses.slice(a * 3, a * 3 + 3), [401, 429, 429], `address ${a}: ${statuses}`);
    assert.equal(await metric('chatd_logins_total{result="bad_credentials"}') - before, 10);
    // Requests sent side by side from one new address share its one try.
    const side = await Promise.all(Array.from({ length: 4 }, () => login(username, 'parallel', '192.0.2.77')));
    assert.deepEqual(side.map((r) => r.status).sort(), [401, 429, 429, 429]);
    // The owner, from an address of its own, still gets in.
    assert.equal((await login(username, PASSWORD, '203.0.113.40')).status, 200);
});

test('an address that fails for many usernames is locked out for all of them', async () => {
    const users = [];
    for (let i = 0; i < 4; i++)
        users.push(await registerAndLogin(server, uniqueName('thr'), PASSWORD));
    for (let i = 0; i < 3; i++)
        assert.equal((await login(users[i].username, 'wrong password', '198.51.100.60')).status, 401);
    assertApiError(await login(users[3].username, PASSWORD, '198.51.100.60'), 429, 'rate_limited');
    assert.equal((await login(users[3].username, PASSWORD, '198.51.100.61')).status, 200);
});

test('addresses of one IPv6 /64 count as one address: a locked username gives the /64 one try', async () => {
    const { username } = await registerAndLogin(server, uniqueName('thr'), PASSWORD);
    for (let i = 1; i <= 3; i++)
        assert.equal((await login(username, 'wrong password', `2001:db8:aa:1::${i}`)).status, 401);
    // Another address of the same /64 is not new: it waits, whatever its last 64 bits.
    for (const a of ['2001:db8:aa:1::99', '2001:db8:aa:1:ffff:ffff:ffff:ffff', '2001:0db8:00aa:0001::1'])
        assertApiError(await login(username, 'guess', a), 429, 'rate_limited');
    // Another /64 is: it gets its one try, and its other addresses none.
    assertApiError(await login(username, 'guess', '2001:db8:aa:2::1'), 401, 'unauthorized');
    assertApiError(await login(username, 'guess', '2001:db8:aa:2::2'), 429, 'rate_limited');
    assert.equal((await login(username, PASSWORD, '2001:db8:aa:3::1')).status, 200);
    // The lockout of an address holds for its whole /64, for every username.
    const users = [];
    for (let i = 0; i < 4; i++)
        users.push(await registerAndLogin(server, uniqueName('thr'), PASSWORD));
    for (let i = 0; i < 3; i++)
        assert.equal((await login(users[i].username, 'wrong password', `2001:db8:bb:1::${i + 1}`)).status, 401);
    assertApiError(await login(users[3].username, PASSWORD, '2001:db8:bb:1::77'), 429, 'rate_limited');
    assert.equal((await login(users[3].username, PASSWORD, '2001:db8:bb:2::77')).status, 200);
});

test('an IPv4-mapped IPv6 address counts as its IPv4 address', async () => {
    const users = [];
    for (let i = 0; i < 4; i++)
        users.push(await registerAndLogin(server, uniqueName('thr'), PASSWORD));
    for (let i = 0; i < 3; i++) {
        const a = i % 2 ? '::ffff:198.51.100.80' : '198.51.100.80';
        assert.equal((await login(users[i].username, 'wrong password', a)).status, 401);
    }
    assertApiError(await login(users[3].username, PASSWORD, '::ffff:198.51.100.80'), 429, 'rate_limited');
    assertApiError(await login(users[3].username, PASSWORD, '198.51.100.80'), 429, 'rate_limited');
});

test('requests sent side by side from one address cannot all start before a failure is counted', async () => {
    const { username } = await registerAndLogin(server, uniqueName('thr'), PASSWORD);
    const before = await metric('chatd_logins_total{result="bad_credentials"}');
    // Twenty wrong passwords at once, the limit being three: the tries in flight count
    // as failures would, so only three reach a password check, whatever the timing.
    const burst = await Promise.all(Array.from({ length: 20 },
        (_, i) => login(username, `burst ${i}`, '198.51.100.90')));
    const statuses = burst.map((r) => r.status).sort();
    assert.deepEqual(statuses, [...Array(3).fill(401), ...Array(17).fill(429)], statuses.join(' '));
    for (const r of burst.filter((x) => x.status === 429))
        assert.ok(Number(r.headers['retry-after']) >= 1, r.headers['retry-after']);
    assert.equal(await metric('chatd_logins_total{result="bad_credentials"}') - before, 3);
    // The username is locked now. Twenty new addresses, three requests each at once:
    // one guess per address reaches the password, the others wait.
    const mid = await metric('chatd_logins_total{result="bad_credentials"}');
    const many = await Promise.all(Array.from({ length: 60 },
        (_, i) => login(username, `many ${i}`, `192.0.2.${100 + (i % 20)}`)));
    assert.ok(many.every((r) => r.status === 401 || r.status === 429), many.map((r) => r.status).join(' '));
    assert.equal(await metric('chatd_logins_total{result="bad_credentials"}') - mid, 20);
    // The owner, from an address of its own, still gets in.
    assert.equal((await login(username, PASSWORD, '203.0.113.90')).status, 200);
});
