// chatd dlq: listing, showing, replaying and purging dead letters through the database,
// with the server running and stopped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, freePort, runChatd, startServer, registerAndLogin, tmpDir, uniqueName, waitFor }
    from './lib/harness.mjs';
import fs from 'node:fs';
import path from 'node:path';

const dlq = (srv, ...args) =>
    runChatd(['dlq', ...args, '-c', srv.configPath, '--data-dir', srv.dataDir]);

// A data directory with a database and no dead letters: `user add` may create one.
async function seededDataDir() {
    const data = path.join(tmpDir(), 'data');
    const r = await runChatd(['user', 'add', 'seed', '--data-dir', data], { input: 'seed-password-1\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /creating a new database/);
    return data;
}

test('dlq and backup refuse a data directory without a database, and create nothing', async () => {
    const data = path.join(tmpDir(), 'typo');
    for (const args of [['dlq', 'list'], ['dlq', 'purge', '--all'], ['backup', path.join(tmpDir(), 'b.db')]]) {
        const r = await runChatd([...args, '--data-dir', data]);
        assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /no database at .*typo\/chatd\.db/);
        assert.equal(fs.existsSync(data), false, 'nothing created');
    }
});

test('dlq answers usage errors with 2 and unknown ids with 1', async () => {
    const data = await seededDataDir();
    const run = (...args) => runChatd(['dlq', ...args, '--data-dir', data]);
    for (const args of [[], ['bogus'], ['show'], ['show', 'x'], ['replay'], ['purge', '0'],
        ['list', 'extra']]) {
        const r = await run(...args);
        assert.equal(r.code, 2, `dlq ${args.join(' ')}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /usage: chatd dlq/);
    }
    const list = await run('list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /no dead letters/);
    for (const verb of ['show', 'replay', 'purge']) {
        const r = await run(verb, '42');
        assert.equal(r.code, 1, `${verb}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /no dead letter 42/);
    }
});

// The command line parser takes "--all" for an option of chatd itself; until it hands
// the arguments after a verb to the verb untouched, this one waits.
test('dlq replay --all and purge --all', async () => {
    const data = await seededDataDir();
    const replay = await runChatd(['dlq', 'replay', '--all', '--data-dir', data]);
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stdout, /^0 dead letters marked/);
    const purge = await runChatd(['dlq', 'purge', '--all', '--data-dir', data]);
    assert.equal(purge.code, 0, purge.stderr);
    assert.match(purge.stdout, /^0 dead letters purged/);
});

test('a dead letter survives restarts; a replay that fails again updates the row', async () => {
    // A webhook to a port nobody listens on: every attempt fails at once.
    const port = await freePort();
    const srv = await startServer({ config: `[notification]
webhook_url = http://127.0.0.1:${port}/hook
max_attempts = 2
retry_base_ms = 20
` });
    const [sender, rcpt] = await Promise.all(
        ['s', 'r'].map((n) => registerAndLogin(srv, uniqueName(n))));
    const h = api(srv);
    const auth = (u) => ({ headers: { authorization: `Bearer ${u.access_token}` } });
    const room = await h.post('/v1/rooms', { name: 'dlq', members: [rcpt.username] }, auth(sender));
    assert.equal(room.status, 201, room.text);
    const msg = await h.post(`/v1/rooms/${room.json.room.id}/messages`, { body: 'lost?' }, auth(sender));
    assert.equal(msg.status, 201, msg.text);

    const line = await waitFor(async () => (await dlq(srv, 'list')).stdout.split('\n')
        .find((l) => l.includes('notification.webhook')), { message: 'a dead letter', timeout: 10000 });
    const id = /^\d+/.exec(line)[0];
    assert.match(line, /\s2\s/, `two attempts: ${line}`);
    const shown = await dlq(srv, 'show', id);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^topic: notification\.requested$/m);
    assert.match(shown.stdout, /^replay_requested: no$/m);
    assert.match(shown.stdout, /"body":\s+"lost\?"/, 'the payload, pretty-printed');

    // Marked while the server is down: delivered (and failing again) once it runs.
    assert.equal(await srv.stop(), 0, srv.logs());
    const replay = await dlq(srv, 'replay', id);
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stdout, /will be delivered when the server runs/);
    assert.match((await dlq(srv, 'show', id)).stdout, /^replay_requested: yes$/m);
    await srv.restart();
    await waitFor(async () => /^replay_requested: no$/m.test((await dlq(srv, 'show', id)).stdout),
        { message: 'the replay ran', timeout: 10000 });
    const again = (await dlq(srv, 'show', id)).stdout;
    assert.match(again, /^attempts: 4$/m, again);

    const purge = await dlq(srv, 'purge', id);
    assert.equal(purge.code, 0, purge.stderr);
    assert.match((await dlq(srv, 'list')).stdout, /no dead letters/);
    assert.equal(await srv.stop(), 0, srv.logs());
});
