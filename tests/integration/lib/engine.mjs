// engine.mjs: which storage engine the integration tests run chatd on.
//
// CHATD_TEST_ENGINE=pg (with CHATD_TEST_PG_URL naming a server whose role may CREATE
// DATABASE; tests/run.sh starts a throwaway one) puts every server on PostgreSQL: each
// data directory gets a database of its own, made fresh the first time this process sees
// that directory and used again for each later start on it (a restart, a reuse), and the
// server's chatd.conf gets `[database] url` for it. Anything else: SQLite in the data
// directory, as chatd does by default.
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** 'pg' or 'sqlite'. */
export const engine = process.env.CHATD_TEST_ENGINE === 'pg' ? 'pg' : 'sqlite';

/**
 * Marks a test that holds only on SQLite (it reads chatd.db, its WAL, its file modes...).
 *   test(name, { skip: sqliteOnly('reason') }, fn)   as a test option
 *   if (sqliteOnly(t, 'reason')) return;           inside a test (t.skip, then true)
 * On SQLite the option is false and the call returns false.
 */
export function sqliteOnly(t, reason) {
    if (typeof t === 'string')
        return engine === 'sqlite' ? false : `SQLite only: ${t}`;
    if (engine === 'sqlite')
        return false;
    t.skip(`SQLite only: ${reason}`);
    return true;
}

// Database names stay under PostgreSQL's 63 bytes and are plain identifiers.
const PREFIX = (process.env.CHATD_TEST_PG_PREFIX || 'chatd_it').replace(/[^a-z0-9_]/g, '');

const made = new Map();     // database name -> its creation (a promise), in this process

function baseUrl() {
    const url = process.env.CHATD_TEST_PG_URL;
    if (!url)
        throw new Error('CHATD_TEST_ENGINE=pg needs CHATD_TEST_PG_URL (a PostgreSQL server URL)');
    return url;
}

/** url with its database replaced by name (query parameters kept). */
export function urlForDatabase(url, name) {
    const u = new URL(url);
    u.pathname = `/${name}`;
    return u.toString();
}

// Runs statements on a connection of their own (one held open would keep the test
// process from exiting); answers the last one's rows.
async function runOn(url, ...statements) {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => { /* reported by the query that fails */ });
    await c.connect();
    try {
        let rows = [];
        for (const sql of statements)
            rows = (await c.query(sql)).rows;
        return rows;
    } finally {
        await c.end().catch(() => {});
    }
}

const adminRun = (...statements) => runOn(baseUrl(), ...statements);

// The name follows from the directory's path, so it is the same for every start on it.
function nameFor(dataDir) {
    const h = createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 20);
    return `${PREFIX}_${h}`;
}

/**
 * The URL of dataDir's database: created empty (dropped first, should an earlier run
 * have left one of that name) the first time, the same one afterwards.
 */
export async function databaseFor(dataDir) {
    const name = nameFor(dataDir);
    // Two servers started at once on one directory share one creation.
    if (!made.has(name)) {
        // template0: nobody is ever connected to it, so creates in parallel never wait.
        made.set(name, adminRun(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`,
            `CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8'`));
    }
    try {
        await made.get(name);
    } catch (e) {
        made.delete(name);
        throw e;
    }
    return urlForDatabase(baseUrl(), name);
}

/** True when chatd.conf text already sets `url` in a [database] section. */
export function configHasDatabaseUrl(text) {
    let section = '';
    for (const raw of text.split('\n')) {
        const line = raw.trim();
        const sec = /^\[([^\]]*)\]/.exec(line);
        if (sec)
            section = sec[1].trim();
        else if (section === 'database' && /^url\s*=/.test(line))
            return true;
    }
    return false;
}

/** The config text to append so that chatd uses url. */
export function databaseSection(url) {
    return `\n# added by tests/integration/lib/engine.mjs (CHATD_TEST_ENGINE=pg)\n[database]\nurl = ${url}\n`;
}

/**
 * Tests that sign tokens with the server's own key read it from data_dir/jwt.pem. On
 * PostgreSQL chatd keeps it in the database (chatd_keys): once a server is up, a copy
 * goes where those tests look, when it is not there yet. The directory is chatd's (it
 * makes data_dir on both engines): none, no copy.
 */
export async function copySigningKey(url, dataDir) {
    const file = path.join(dataDir, 'jwt.pem');
    if (existsSync(file) || !existsSync(dataDir))
        return;
    let rows;
    try {
        rows = await runOn(url, "SELECT value FROM chatd_keys WHERE name = 'jwt.pem'");
    } catch {
        return;     // no such table: the key is elsewhere (key_file), nothing to copy
    }
    if (rows.length === 1)
        writeFileSync(file, rows[0].value, { mode: 0o600 });
}

/**
 * Drops the databases this process made, once no server uses them any more; called as
 * the test process is about to exit (best effort: a leftover costs only disk).
 */
export async function dropDatabases() {
    const names = [...made.keys()];
    made.clear();
    if (names.length === 0)
        return;
    await adminRun(...names.map((n) => `DROP DATABASE IF EXISTS ${n} WITH (FORCE)`))
        .catch(() => { /* the server may be gone already */ });
}
