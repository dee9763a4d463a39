// The harness's engine switch (lib/engine.mjs): on PostgreSQL every data directory gets
// a database of its own, the same one again on each start there; on SQLite the config
// stays as the test wrote it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { DEFAULT_CONFIG, engine, registerAndLogin, request, sqliteOnly, startServer, uniqueName }
    from './lib/harness.mjs';
import { configHasDatabaseUrl, databaseSection, urlForDatabase } from './lib/engine.mjs';

const pgOnly = engine === 'pg' ? false : 'PostgreSQL only (CHATD_TEST_ENGINE=pg)';

test('a [database] url is found only in its own section', () => {
    assert.equal(configHasDatabaseUrl('[database]\nurl = postgres://h/db\n'), true);
    assert.equal(configHasDatabaseUrl('[database]\n  url=\n'), true, 'an empty url is the test\'s choice');
    assert.equal(configHasDatabaseUrl('[database]\ndurability = full\n[auth]\nurl = x\n'), false);
    assert.equal(configHasDatabaseUrl('[notification]\nwebhook_url = http://x\n'), false);
    assert.equal(configHasDatabaseUrl('# [database]\n# url = x\n'), false);
    assert.equal(configHasDatabaseUrl(''), false);
    assert.equal(configHasDatabaseUrl(databaseSection('postgres://h/db')), true);
});

test('a database URL keeps everything but the database name', () => {
    assert.equal(urlForDatabase('postgres://postgres@127.0.0.1:5432/postgres', 'x_1'),
        'postgres://postgres@127.0.0.1:5432/x_1');
    assert.equal(urlForDatabase('postgresql://u:p@h:1/db?sslmode=disable', 'y'),
        'postgresql://u:p@h:1/y?sslmode=disable');
    assert.equal(urlForDatabase('postgres://h', 'z'), 'postgres://h/z');
});

test('sqliteOnly skips on PostgreSQL only, with the reason', (t) => {
    assert.equal(sqliteOnly('why'), engine === 'sqlite' ? false : 'SQLite only: why');
    const calls = [];
    const fake = { skip: (m) => calls.push(m) };
    assert.equal(sqliteOnly(fake, 'because'), engine !== 'sqlite');
    assert.deepEqual(calls, engine === 'sqlite' ? [] : ['SQLite only: because']);
    t.diagnostic(`engine: ${engine}`);
});

test('on SQLite the config is left as the test wrote it', { skip: sqliteOnly('what the harness leaves alone on SQLite') }, async () => {
    const srv = await startServer();
    try {
        assert.equal(configHasDatabaseUrl(readFileSync(srv.configPath, 'utf8')), false);
        assert.equal(srv.databaseUrl, null);
    } finally {
        await srv.stop();
    }
});

test('each data directory has a database of its own, kept across restarts and config rewrites', { skip: pgOnly }, async () => {
    const [a, b] = await Promise.all([startServer(), startServer()]);
    try {
        assert.ok(a.databaseUrl && b.databaseUrl);
        assert.notEqual(a.databaseUrl, b.databaseUrl);
        const alice = await registerAndLogin(a, uniqueName('eng'));
        const login = (srv) => request(srv, 'POST', '/v1/auth/login',
            { body: { username: alice.username, password: alice.password } });
        assert.equal((await login(b)).status, 401, 'b knows nothing of a\'s users');

        const url = a.databaseUrl;
        await a.restart();
        assert.equal(a.databaseUrl, url);
        assert.equal((await login(a)).status, 200, 'a restart keeps the database');

        // A test that writes a whole new chatd.conf gets the same database back.
        writeFileSync(a.configPath, DEFAULT_CONFIG);
        await a.restart();
        assert.match(readFileSync(a.configPath, 'utf8'), new RegExp(`url = ${url.replace(/[.?]/g, '\\$&')}`));
        assert.equal((await login(a)).status, 200);

        // Another server on the same data directory: the same database.
        await a.stop();
        const again = await startServer({ dataDir: a.dataDir });
        try {
            assert.equal(again.databaseUrl, url);
            assert.equal((await login(again)).status, 200);
        } finally {
            await again.stop();
        }
    } finally {
        await Promise.all([a, b].map((s) => s.exitStatus === null && s.stop()));
    }
});

test('a config that names its own database keeps it', { skip: pgOnly }, async () => {
    const other = 'postgres://127.0.0.1:1/not_ours';
    const srv = startServer({ config: `[database]\nurl = ${other}\n` });
    // Port 1: nobody listens; chatd refuses to start naming the key and that server.
    await assert.rejects(srv, /\[database\] url[^\n]*port 1 failed/);
});
