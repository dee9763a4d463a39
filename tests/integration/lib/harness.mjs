// harness.mjs: start the real chatd binary for a test and talk to it.
//
// Every server gets a fresh temporary directory holding its chatd.conf and its data
// directory, listens on 127.0.0.1 port 0, and is found through the line it prints:
// "chatd listening on http://HOST:PORT". Servers still running when the test process
// exits are killed, so a failed test never leaves one behind. With CHATD_TEST_ENGINE=pg
// each data directory gets a PostgreSQL database of its own (lib/engine.mjs).
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import {
    configHasDatabaseUrl, copySigningKey, databaseFor, databaseSection, dropDatabases, engine,
} from './engine.mjs';

export { engine, sqliteOnly } from './engine.mjs';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

// Limits high enough that no test trips them by accident; a test about a limit sets it
// in its own config, which is appended after this text (later keys win in chatd.conf).
export const DEFAULT_CONFIG = `# written by tests/integration/lib/harness.mjs
[limits]
messages_per_s = 100000
messages_burst = 100000
typing_per_s = 100000
connects_per_s = 100000
connects_burst = 100000
registrations_per_min = 100000
login_failures_per_min = 100000
connections_per_user = 100000
connections_per_address = 100000
`;

// Under $CHATD_WRAPPER (valgrind) chatd starts and stops many times slower.
const WRAPPED = Boolean((process.env.CHATD_WRAPPER ?? '').trim());
const START_TIMEOUT_MS = WRAPPED ? 180000 : 10000;
const STOP_TIMEOUT_MS = WRAPPED ? 180000 : 10000;
const LISTEN_RE = /^chatd listening on (http:\/\/(\[[^\]]+\]|[^:\s]+):(\d+))\s*$/m;

/** The chatd binary under test: $CHATD_BIN (relative to the cwd or the repo), else build/chatd. */
export function chatdBin() {
    const bin = process.env.CHATD_BIN || 'build/chatd';
    if (path.isAbsolute(bin))
        return bin;
    const fromCwd = path.resolve(bin);
    return existsSync(fromCwd) ? fromCwd : path.resolve(repoRoot, bin);
}

// Live child processes and temporary directories, cleaned up when the process exits.
const live = new Set();
const tmpDirs = new Set();

function cleanup() {
    for (const proc of live) {
        try { proc.kill('SIGKILL'); } catch { /* already gone */ }
    }
    live.clear();
    if (!process.env.CHATD_KEEP_TMP) {
        for (const d of tmpDirs) {
            try { rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
        }
    }
}
process.on('exit', cleanup);
// A server a test forgot to stop would keep the test process alive. Once the file's
// tests are done, servers stop holding the event loop (the file's own after() hooks may
// still stop them cleanly, which sanitizer builds need for their exit checks); whatever
// still runs when the process exits is killed by cleanup().
after(() => {
    for (const proc of live) {
        proc.unref();
        proc.stdout?.unref?.();
        proc.stderr?.unref?.();
    }
});
// Once nothing is left to do, the databases made for this process's servers go (the
// servers first: a database in use cannot be dropped cleanly).
let dropped = false;
process.on('beforeExit', async () => {
    if (dropped || engine !== 'pg' || process.env.CHATD_KEEP_TMP)
        return;
    dropped = true;
    const procs = [...live];
    for (const proc of procs) {
        try { proc.kill('SIGKILL'); } catch { /* already gone */ }
    }
    await Promise.all(procs.map(exited));
    await dropDatabases();
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => { cleanup(); process.exit(128 + os.constants.signals[sig]); });
}

/** A fresh temporary directory, removed at exit (kept when CHATD_KEEP_TMP is set). */
export function tmpDir(prefix = 'chatd-test-') {
    const d = mkdtempSync(path.join(os.tmpdir(), prefix));
    tmpDirs.add(d);
    return d;
}

/** Resolves with {code, signal} once proc has exited (at once when it already has). */
function exited(proc) {
    if (proc.exitCode !== null || proc.signalCode !== null)
        return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
    return new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
}

function withTimeout(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Starts the binary under test, or $CHATD_WRAPPER with the binary as its first argument
 * after the wrapper's own words (`CHATD_WRAPPER="valgrind -q" ...`): `make valgrind`.
 * A test's own wrapper (an array of words: strace, a shell setting the umask) goes
 * before that.
 */
function spawnChatd(args, options, own = []) {
    const wrapper = [...own, ...(process.env.CHATD_WRAPPER ?? '').split(/\s+/).filter(Boolean)];
    if (wrapper.length)
        return spawn(wrapper[0], [...wrapper.slice(1), chatdBin(), ...args], options);
    return spawn(chatdBin(), args, options);
}

/**
 * Runs chatd to completion (for CLI tests): resolves {code, signal, stdout, stderr}.
 * opts: {env, cwd, timeout, input, wrapper (as for startServer)}
 */
export function runChatd(args, opts = {}) {
    return new Promise((resolve, reject) => {
        const proc = spawnChatd(args, {
            cwd: opts.cwd, env: { ...process.env, ...opts.env },
            stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        }, opts.wrapper);
        live.add(proc);
        let stdout = '', stderr = '';
        proc.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
        proc.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
        if (opts.input !== undefined)
            proc.stdin.end(opts.input);
        const timer = setTimeout(() => {
            proc.kill('SIGKILL');
            reject(new Error(`chatd ${args.join(' ')}: still running after ${opts.timeout ?? 10000} ms\n${stdout}${stderr}`));
        }, opts.timeout ?? 10000);
        proc.on('error', (e) => { clearTimeout(timer); live.delete(proc); reject(e); });
        proc.on('close', (code, signal) => {
            clearTimeout(timer);
            live.delete(proc);
            resolve({ code, signal, stdout, stderr });
        });
    });
}

/**
 * Starts chatd and waits until it listens.
 * opts: {config: extra chatd.conf text (appended to DEFAULT_CONFIG), rawConfig: the whole
 * chatd.conf text instead, args: extra arguments, env: extra environment, listen:
 * HOST:PORT (default 127.0.0.1:0), dataDir: an existing data directory to reuse, wrapper:
 * words to run chatd under, e.g. ['strace', '-f', '-o', FILE]; then proc is the wrapper's)
 *
 * Returns the server: {url, host, port, proc, dir, dataDir, configPath, stop(signal) ->
 * exit code, kill9(), restart(opts), logs(), exitStatus, databaseUrl (on PostgreSQL: the
 * database the harness gave it)}.
 */
export async function startServer(opts = {}) {
    const dir = tmpDir();
    const configPath = path.join(dir, 'chatd.conf');
    const text = opts.rawConfig ?? DEFAULT_CONFIG + (opts.config ? `\n${opts.config}\n` : '');
    writeFileSync(configPath, text);

    const server = {
        dir, configPath,
        dataDir: opts.dataDir ?? path.join(dir, 'data'),
        proc: null, url: null, host: null, port: null, exitStatus: null, databaseUrl: null,
        output: [],
        logs() { return this.output.join(''); },
        stop: (signal = 'SIGTERM') => stopServer(server, signal),
        kill9: () => stopServer(server, 'SIGKILL'),
        restart: async (ropts = {}) => {
            if (server.proc && server.exitStatus === null)
                await stopServer(server, 'SIGTERM');
            await launch(server, { ...opts, ...ropts });
            return server;
        },
    };
    await launch(server, opts);
    return server;
}

/* Under a wrapper, RSA key generation alone takes chatd half a minute: each new data
 * directory gets a copy of one key made once, natively, for this process. */
let wrappedKey = null;
function seedKey(dataDir) {
    const dest = path.join(dataDir, 'jwt.pem');
    if (existsSync(dest))
        return;
    if (!wrappedKey) {
        wrappedKey = path.join(tmpDir(), 'jwt.pem');
        const r = spawnSync(chatdBin(), ['keygen', wrappedKey],
            { cwd: path.dirname(wrappedKey), stdio: 'ignore' });   // no ./chatd.conf there
        if (r.status !== 0)
            throw new Error(`chatd keygen ${wrappedKey}: exit ${r.status}`);
    }
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    copyFileSync(wrappedKey, dest);
    chmodSync(dest, 0o600);
}

// On PostgreSQL the config gets the data directory's database, at every start: a test
// may have rewritten chatd.conf since the last one. A config naming a database keeps it.
async function useEngine(server) {
    if (engine !== 'pg' || configHasDatabaseUrl(readFileSync(server.configPath, 'utf8')))
        return;
    server.databaseUrl = await databaseFor(server.dataDir);
    appendFileSync(server.configPath, databaseSection(server.databaseUrl));
}

async function launch(server, opts) {
    await useEngine(server);
    if (WRAPPED && !/^\s*key_file\s*=\s*\S/m.test(readFileSync(server.configPath, 'utf8')))
        seedKey(server.dataDir);
    const args = ['-c', server.configPath, '--listen', opts.listen ?? '127.0.0.1:0',
        '--data-dir', server.dataDir, ...(opts.args ?? [])];
    const proc = spawnChatd(args, {
        env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'],
    }, opts.wrapper);
    live.add(proc);
    server.proc = proc;
    server.exitStatus = null;
    server.output.push(`--- chatd ${args.join(' ')}\n`);

    let stdoutText = '';
    const listening = new Promise((resolve, reject) => {
        proc.stdout.setEncoding('utf8').on('data', (d) => {
            server.output.push(d);
            stdoutText += d;
            const m = LISTEN_RE.exec(stdoutText);
            if (m)
                resolve(m);
        });
        proc.stderr.setEncoding('utf8').on('data', (d) => server.output.push(d));
        proc.on('error', reject);
        proc.on('exit', (code, signal) => {
            live.delete(proc);
            server.exitStatus = { code, signal };
            reject(new Error(`chatd exited before listening (code ${code}, signal ${signal})`));
        });
    });
    let m;
    try {
        m = await withTimeout(listening, START_TIMEOUT_MS, 'waiting for "chatd listening on"');
    } catch (e) {
        proc.kill('SIGKILL');
        e.message += `\n--- chatd output:\n${server.logs()}`;
        throw e;
    }
    server.url = m[1];
    server.host = m[2].replace(/^\[|\]$/g, '');
    server.port = Number(m[3]);
    server.wsUrl = server.url.replace(/^http/, 'ws');
    if (server.databaseUrl)
        await copySigningKey(server.databaseUrl, server.dataDir);
}

/** Sends signal and waits for the exit; returns the exit code (null if killed by a signal). */
async function stopServer(server, signal) {
    const proc = server.proc;
    if (!proc)
        return null;
    if (server.exitStatus === null)
        proc.kill(signal);
    let st;
    try {
        st = await withTimeout(exited(proc), STOP_TIMEOUT_MS, `chatd exit after ${signal}`);
    } catch (e) {
        proc.kill('SIGKILL');
        await exited(proc);
        e.message += `\n--- chatd output:\n${server.logs()}`;
        throw e;
    }
    // Let the pipes drain so logs() holds everything the process wrote.
    await Promise.all([proc.stdout, proc.stderr].map((s) => finished(s).catch(() => {})));
    live.delete(proc);
    server.exitStatus = st;
    return st.code;
}

/**
 * HTTP client for a server. request(method, path, {body, token, headers, timeout}) ->
 * {status, headers, text, json}. An object body is sent as JSON; a string or Buffer as is.
 * json is the parsed body, or undefined when the body is not JSON. Each request uses a new
 * connection, so tests never depend on keep-alive state.
 */
export function api(server) {
    return {
        request: (method, p, o = {}) => request(server, method, p, o),
        get: (p, o) => request(server, 'GET', p, o),
        post: (p, body, o = {}) => request(server, 'POST', p, { ...o, body }),
        del: (p, o) => request(server, 'DELETE', p, o),
    };
}

export function request(server, method, p, o = {}) {
    const headers = { ...(o.headers ?? {}) };
    let payload;
    if (o.body !== undefined) {
        payload = typeof o.body === 'string' || Buffer.isBuffer(o.body)
            ? o.body : JSON.stringify(o.body);
        if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
            headers['Content-Type'] = 'application/json';
    }
    if (o.token)
        headers.Authorization = `Bearer ${o.token}`;
    return new Promise((resolve, reject) => {
        const req = http.request({
            host: server.host, port: server.port, method, path: p, headers, agent: false,
            timeout: o.timeout ?? 10000,
        }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => {
                const text = Buffer.concat(chunks).toString('utf8');
                let json;
                try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
                resolve({ status: res.statusCode, headers: res.headers, text, json });
            });
            res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error(`${method} ${p}: timed out`)));
        req.on('error', reject);
        req.end(payload);
    });
}

let userSeq = 0;

/** A username no other test (or test process) uses: [a-z0-9_] and at most 32 bytes. */
export function uniqueName(prefix = 'u') {
    const rnd = Math.random().toString(36).slice(2, 6);
    return `${prefix}${process.pid.toString(36)}_${(++userSeq).toString(36)}${rnd}`.slice(0, 32);
}

/**
 * Registers a user and logs it in. Returns {user, username, password, access_token,
 * refresh_token, login (the whole login answer)}. Throws on any unexpected status.
 */
/** Registers and logs in one user per name (each made unique), in parallel. */
export function registerUsers(server, names) {
    return Promise.all(names.map((n) => registerAndLogin(server, uniqueName(n))));
}

/** Asserts an API error answer: the status, {"error":{"code"}} and a non-empty message. */
export function assertApiError(res, status, code) {
    assert.equal(res.status, status, res.text);
    assert.equal(res.json?.error?.code, code, res.text);
    assert.equal(typeof res.json.error.message, 'string', res.text);
    assert.ok(res.json.error.message.length > 0, res.text);
}

export async function registerAndLogin(server, username = uniqueName(), password = 'correct horse battery') {
    const reg = await request(server, 'POST', '/v1/auth/register', { body: { username, password } });
    if (reg.status !== 201)
        throw new Error(`register ${username}: ${reg.status} ${reg.text}`);
    const login = await request(server, 'POST', '/v1/auth/login', { body: { username, password } });
    if (login.status !== 200)
        throw new Error(`login ${username}: ${login.status} ${login.text}`);
    return {
        user: login.json.user, username, password,
        access_token: login.json.access_token, refresh_token: login.json.refresh_token,
        login: login.json,
    };
}

/**
 * Polls fn (sync or async) until it returns a truthy value, which is returned. Throws
 * after timeout ms with message and fn's last error, if any.
 */
export async function waitFor(fn, { timeout = 5000, interval = 20, message = 'condition' } = {}) {
    const deadline = Date.now() + timeout;
    let lastErr;
    for (;;) {
        try {
            const v = await fn();
            if (v)
                return v;
            lastErr = undefined;
        } catch (e) {
            lastErr = e;
        }
        if (Date.now() >= deadline) {
            const err = new Error(`waitFor: ${message} not met within ${timeout} ms` +
                (lastErr ? `: ${lastErr.message}` : ''));
            err.cause = lastErr;
            throw err;
        }
        await new Promise((r) => setTimeout(r, interval));
    }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

function matcher(pred) {
    if (typeof pred === 'function')
        return pred;
    if (typeof pred === 'string')
        return (f) => f.type === pred;
    if (pred && typeof pred === 'object')
        return (f) => Object.entries(pred).every(([k, v]) => f[k] === v);
    return () => true;
}

/**
 * Opens a WebSocket to /v1/ws with npm `ws`. opts: {protocols, headers, query (true: send
 * the token as ?access_token=), path, timeout, wsOptions}. Resolves once open; rejects on
 * a refused upgrade with err.status and err.body set.
 *
 * The wrapper buffers every JSON frame it receives:
 *   next(pred, timeout)  the first buffered or future frame matching pred (a type string,
 *                        an object of fields to compare, or a function); removes it
 *   frames               every frame received, in order (never trimmed)
 *   send(obj)            JSON-encodes objects; strings and Buffers are sent as they are
 *   close(code, reason)  and `closed`: a promise of {code, reason}
 */
export function wsConnect(server, token, opts = {}) {
    let url = `ws://${server.host.includes(':') ? `[${server.host}]` : server.host}:${server.port}${opts.path ?? '/v1/ws'}`;
    const headers = { ...(opts.headers ?? {}) };
    if (token && opts.query)
        url += `${url.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(token)}`;
    else if (token)
        headers.Authorization = `Bearer ${token}`;
    const ws = new WebSocket(url, opts.protocols ?? [], {
        headers, handshakeTimeout: opts.timeout ?? 10000, ...(opts.wsOptions ?? {}),
    });

    const pending = [];     // frames not yet taken by next()
    const waiters = [];     // {match, resolve, reject, timer}
    let closeInfo = null;
    const conn = {
        ws, frames: [], protocol: undefined,
        closed: null,
        next(pred, timeout = 5000) {
            const match = matcher(pred);
            const i = pending.findIndex(match);
            if (i >= 0)
                return Promise.resolve(pending.splice(i, 1)[0]);
            if (closeInfo)
                return Promise.reject(new Error(`next(${describe(pred)}): connection closed ${closeInfo.code} ${closeInfo.reason}`));
            return new Promise((resolve, reject) => {
                const w = { match, resolve, reject, pred };
                w.timer = setTimeout(() => {
                    waiters.splice(waiters.indexOf(w), 1);
                    reject(new Error(`next(${describe(pred)}): no matching frame within ${timeout} ms; unmatched frames: ${JSON.stringify(pending).slice(0, 2000)}`));
                }, timeout);
                waiters.push(w);
            });
        },
        send(obj) {
            ws.send(typeof obj === 'string' || Buffer.isBuffer(obj) ? obj : JSON.stringify(obj));
        },
        close(code = 1000, reason = '') {
            if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN)
                ws.close(code, reason);
            return conn.closed;
        },
        terminate() {
            ws.terminate();
            return conn.closed;
        },
    };

    conn.closed = new Promise((resolve) => {
        ws.on('close', (code, reason) => {
            closeInfo = { code, reason: reason.toString() };
            for (const w of waiters.splice(0)) {
                clearTimeout(w.timer);
                w.reject(new Error(`next(${describe(w.pred)}): connection closed ${code} ${closeInfo.reason}`));
            }
            resolve(closeInfo);
        });
    });

    ws.on('message', (data, isBinary) => {
        let frame;
        try {
            frame = JSON.parse(data.toString('utf8'));
        } catch {
            frame = { type: '<not json>', binary: isBinary, raw: data.toString('utf8') };
        }
        conn.frames.push(frame);
        const i = waiters.findIndex((w) => w.match(frame));
        if (i >= 0) {
            const [w] = waiters.splice(i, 1);
            clearTimeout(w.timer);
            w.resolve(frame);
        } else {
            pending.push(frame);
        }
    });

    return new Promise((resolve, reject) => {
        ws.once('open', () => { conn.protocol = ws.protocol; resolve(conn); });
        ws.once('unexpected-response', (req, res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => {
                const err = new Error(`WebSocket upgrade refused: ${res.statusCode}`);
                err.status = res.statusCode;
                err.headers = res.headers;
                err.body = Buffer.concat(chunks).toString('utf8');
                try { err.json = JSON.parse(err.body); } catch { /* not JSON */ }
                req.destroy();
                reject(err);
            });
        });
        ws.on('error', (e) => { if (ws.readyState !== WebSocket.OPEN) reject(e); });
    });
}

function describe(pred) {
    if (typeof pred === 'function')
        return pred.name || 'predicate';
    return JSON.stringify(pred);
}
