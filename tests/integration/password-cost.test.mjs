// [auth] password_cost sets the scrypt cost of new hashes; a login with a hash of
// another cost stores a new one, and old hashes keep verifying.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, request, uniqueName, waitFor, sqliteOnly } from './lib/harness.mjs';

let server;
after(() => server && server.stop());

function storedCosts(dataDir) {
    let text = '';
    for (const f of ['chatd.db', 'chatd.db-wal']) {
        const p = path.join(dataDir, f);
        if (fs.existsSync(p))
            text += fs.readFileSync(p).toString('latin1');
    }
    return new Set([...text.matchAll(/\$scrypt\$ln=(\d+),/g)].map((m) => Number(m[1])));
}

test('new hashes use password_cost; a login after a change rehashes', { skip: sqliteOnly('reads the stored hashes out of chatd.db and its WAL') }, async () => {
    server = await startServer({ config: '[auth]\npassword_cost = 10\n' });
    const username = uniqueName('pc');
    const password = 'correct horse battery';
    assert.equal((await request(server, 'POST', '/v1/auth/register', { body: { username, password } })).status, 201);
    assert.ok(storedCosts(server.dataDir).has(10), 'a hash with ln=10 is stored');

    await server.stop();
    fs.appendFileSync(server.configPath, '[auth]\npassword_cost = 11\n');
    await server.restart();
    const login = await request(server, 'POST', '/v1/auth/login', { body: { username, password } });
    assert.equal(login.status, 200, 'the old hash still verifies');
    await waitFor(() => storedCosts(server.dataDir).has(11), { timeout: 10000 });
});

test('password_cost out of range stops the start naming the key', async () => {
    await assert.rejects(startServer({ config: '[auth]\npassword_cost = 9\n' }), /password_cost/);
});
