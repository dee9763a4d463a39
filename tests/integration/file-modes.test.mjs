// The data directory and everything chatd writes into it (the database with its -wal
// and -shm, the keys) and its backups are the service user's alone, whatever the umask
// it was started with.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { registerAndLogin, runChatd, sqliteOnly, startServer, tmpDir, waitFor } from './lib/harness.mjs';

// A umask that lets the group write and everyone read: what a shell often has.
const LOOSE_UMASK = ['sh', '-c', 'umask 0002 && exec "$@"', 'umask-0002'];
const mode = (p) => statSync(p).mode & 0o7777;
const octal = (m) => `0${m.toString(8)}`;

function assertModes(files) {
    const got = Object.fromEntries(Object.keys(files).map((f) => [f, octal(mode(f))]));
    const want = Object.fromEntries(Object.entries(files).map(([f, m]) => [f, octal(m)]));
    assert.deepEqual(got, want);
}

describe('file modes', { skip: sqliteOnly('chatd.db, its side files and the key files in data_dir: on PostgreSQL the database and the keys are in the server') }, () => {
    it('a new data directory is 0700 and its files 0600 under umask 0002, backups too', async () => {
        const server = await startServer({ wrapper: LOOSE_UMASK });
        await registerAndLogin(server);
        const d = server.dataDir;
        const db = path.join(d, 'chatd.db');
        await waitFor(() => existsSync(`${db}-wal`) && existsSync(`${db}-shm`),
            { timeout: 10000, message: 'the WAL and its index exist' });
        const files = {
            [d]: 0o700, [db]: 0o600, [`${db}-wal`]: 0o600, [`${db}-shm`]: 0o600,
            [path.join(d, 'jwt.pem')]: 0o600,
        };
        if (existsSync(path.join(d, 'vapid.pem')))
            files[path.join(d, 'vapid.pem')] = 0o600;
        assertModes(files);

        const copy = path.join(tmpDir('chatd-modes-'), 'copy.db');
        const r = await runChatd(['backup', copy, '-c', server.configPath, '--data-dir', d],
            { wrapper: LOOSE_UMASK });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assertModes({ [copy]: 0o600 });
        assert.equal(await server.stop(), 0, server.logs());
    });

    it('tightens database files found open to others, and warns about an open directory', async () => {
        const server = await startServer({ wrapper: LOOSE_UMASK });
        await registerAndLogin(server);
        const d = server.dataDir;
        const db = path.join(d, 'chatd.db');
        await waitFor(() => existsSync(`${db}-wal`) && existsSync(`${db}-shm`),
            { timeout: 10000, message: 'the WAL and its index exist' });
        await server.kill9();   // leaves the -wal and -shm behind
        for (const f of [db, `${db}-wal`, `${db}-shm`])
            chmodSync(f, 0o644);
        chmodSync(d, 0o755);
        await server.restart({ wrapper: LOOSE_UMASK });
        await registerAndLogin(server);
        assertModes({ [db]: 0o600, [`${db}-wal`]: 0o600, [`${db}-shm`]: 0o600, [d]: 0o755 });
        const logs = server.logs();
        assert.match(logs, new RegExp(`data directory is open to other users.*path=${d} mode=0755`));
        for (const f of [db, `${db}-wal`, `${db}-shm`])
            assert.match(logs, new RegExp(`now 0600 path=${f} was=0644`));
        assert.equal(await server.stop(), 0, server.logs());
    });

    it('warns about key files found readable by others', async () => {
        const server = await startServer({ wrapper: LOOSE_UMASK });
        assert.equal(await server.stop(), 0, server.logs());
        const keys = ['jwt.pem', 'vapid.pem'].map((k) => path.join(server.dataDir, k));
        for (const k of keys)
            chmodSync(k, 0o644);    // a key put back with cp under umask 0022
        await server.restart({ wrapper: LOOSE_UMASK });
        assert.match(server.logs(), new RegExp(`signing key is readable by others path=${keys[0]} mode=644`));
        assert.match(server.logs(), new RegExp(`VAPID key is readable by others path=${keys[1]} mode=644`));
        assert.equal(await server.stop(), 0, server.logs());
    });

    it('names the side file it cannot open, not the database', async () => {
        const dataDir = path.join(tmpDir('chatd-modes-'), 'data');
        // A directory where the WAL belongs: no open() of it succeeds, even as root.
        mkdirSync(path.join(dataDir, 'chatd.db-wal'), { recursive: true, mode: 0o700 });
        chmodSync(dataDir, 0o700);
        await assert.rejects(startServer({ dataDir }), (e) => {
            assert.match(e.message, /cannot open a database file path=\S*\/chatd\.db-wal error="Is a directory"/);
            return true;
        });
    });
});
