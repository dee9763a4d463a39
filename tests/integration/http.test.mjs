// http.test.mjs: the HTTP gateway of the real binary: operational routes, JSON errors,
// keep-alive and pipelining on one socket, the limits (431, 413, 408, max_connections),
// malformed input not disturbing other clients, and draining on SIGTERM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, request, waitFor } from './lib/harness.mjs';

let server;

before(async () => {
    server = await startServer({
        config: '[server]\nheader_timeout_ms = 1500\nmax_connections = 40\n',
    });
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

/** Opens a raw TCP socket; resolves once connected. */
function connect() {
    return new Promise((resolve, reject) => {
        const s = net.connect(server.port, server.host, () => resolve(s));
        s.once('error', reject);
    });
}

/**
 * Collects everything a socket receives until it closes (or timeout ms pass). Resolves
 * {text, closed, ms}.
 */
function collect(sock, timeout = 8000) {
    const t0 = Date.now();
    return new Promise((resolve) => {
        let text = '';
        const timer = setTimeout(() => resolve({ text, closed: false, ms: Date.now() - t0 }), timeout);
        sock.setEncoding('utf8');
        sock.on('data', (d) => { text += d; });
        sock.on('error', () => {});
        sock.on('close', () => {
            clearTimeout(timer);
            resolve({ text, closed: true, ms: Date.now() - t0 });
        });
    });
}

/** Reads from a socket until `count` complete responses (by Content-Length) arrived. */
function readResponses(sock, count, timeout = 5000) {
    return new Promise((resolve, reject) => {
        let buf = '';
        const timer = setTimeout(() => reject(new Error(`only got: ${buf}`)), timeout);
        sock.setEncoding('utf8');
        const onData = (d) => {
            buf += d;
            const out = [];
            let rest = buf;
            for (;;) {
                const end = rest.indexOf('\r\n\r\n');
                if (end < 0)
                    break;
                const head = rest.slice(0, end);
                const m = /content-length: (\d+)/i.exec(head);
                const len = m ? Number(m[1]) : 0;
                if (rest.length < end + 4 + len)
                    break;
                out.push({ head, status: Number(head.split(' ')[1]), body: rest.slice(end + 4, end + 4 + len) });
                rest = rest.slice(end + 4 + len);
            }
            if (out.length >= count) {
                clearTimeout(timer);
                sock.off('data', onData);
                resolve(out);
            }
        };
        sock.on('data', onData);
    });
}

test('healthz, readyz and metrics', async () => {
    const h = await request(server, 'GET', '/healthz');
    assert.equal(h.status, 200);
    assert.deepEqual(h.json, { status: 'ok' });
    assert.match(h.headers['content-type'], /^application\/json/);
    assert.equal(h.headers['cache-control'], 'no-store');

    const r = await request(server, 'GET', '/readyz');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: 'ready' });

    const m = await request(server, 'GET', '/metrics');
    assert.equal(m.status, 200);
    assert.match(m.headers['content-type'], /^text\/plain; version=0\.0\.4/);
    assert.match(m.text, /chatd_http_requests_total\{route="\/healthz",code="200"\} [1-9]/);
    assert.match(m.text, /chatd_http_request_duration_seconds_bucket/);
});

test('unknown paths and methods answer JSON errors', async () => {
    const nf = await request(server, 'GET', '/v1/definitely-not-here');
    assert.equal(nf.status, 404);
    assert.match(nf.headers['content-type'], /^application\/json/);
    assert.equal(nf.json.error.code, 'not_found');
    assert.equal(typeof nf.json.error.message, 'string');

    const na = await request(server, 'POST', '/healthz', { body: {} });
    assert.equal(na.status, 405);
    assert.equal(na.json.error.code, 'method_not_allowed');
    assert.match(na.headers.allow, /GET/);

    const slash = await request(server, 'GET', '/healthz/');
    assert.equal(slash.status, 404);

    const head = await request(server, 'HEAD', '/healthz');
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
});

test('the web client is served with its security headers', async () => {
    const r = await request(server, 'GET', '/');
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/html/);
    assert.match(r.headers['content-security-policy'], /default-src 'self'/);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.ok(r.headers.etag);
    const again = await request(server, 'GET', '/', { headers: { 'If-None-Match': r.headers.etag } });
    assert.equal(again.status, 304);
    const trav = await request(server, 'GET', '/../../etc/passwd');
    assert.equal(trav.status, 404);
    assert.match(trav.headers['content-type'], /^application\/json/);
});

test('keep-alive: pipelined requests on one socket are answered in order', async () => {
    const s = await connect();
    s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' +
            'GET /nope-1 HTTP/1.1\r\nHost: x\r\n\r\n' +
            'GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n' +
            'GET /nope-2 HTTP/1.1\r\nHost: x\r\n\r\n');
    const res = await readResponses(s, 4);
    assert.deepEqual(res.map((r) => r.status), [200, 404, 200, 404]);
    assert.equal(res[0].body, '{"status":"ok"}');
    assert.equal(res[2].body, '{"status":"ready"}');
    // The same socket still serves a later request.
    s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const [later] = await readResponses(s, 1);
    assert.equal(later.status, 200);
    // Connection: close is honoured.
    const done = collect(s);
    s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const { text, closed } = await done;
    assert.ok(closed);
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(text, /Connection: close/i);
});

test('huge headers answer 431 and a big body 413', async () => {
    const s = await connect();
    const done = collect(s);
    s.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40000)}\r\n\r\n`);
    const { text, closed } = await done;
    assert.ok(closed);
    assert.match(text, /^HTTP\/1\.1 431 /);
    assert.match(text, /"code":"invalid_argument"/);

    const big = await request(server, 'POST', '/v1/auth/login', { body: 'x'.repeat(70000) })
        .catch((e) => ({ error: e }));
    // The server answers before reading the body; a client may see a reset instead.
    if (!big.error) {
        assert.equal(big.status, 413);
        assert.equal(big.json.error.code, 'payload_too_large');
    }

    const s2 = await connect();
    const done2 = collect(s2);
    s2.write('POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n');
    const r2 = await done2;
    assert.match(r2.text, /^HTTP\/1\.1 413 /);
    assert.match(r2.text, /"code":"payload_too_large"/);
});

test('garbage gets 400 and others are still served', async () => {
    const s = await connect();
    const done = collect(s);
    s.write('THIS IS NOT HTTP\r\n\r\n');
    const { text, closed } = await done;
    assert.ok(closed);
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.match(text, /application\/json/);
    assert.match(text, /"code":"invalid_argument"/);
    const ok = await request(server, 'GET', '/healthz');
    assert.equal(ok.status, 200);
});

test('a slow head is cut off while another client is served promptly', async () => {
    const slow = await connect();
    const done = collect(slow, 10000);
    const head = 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n';
    let i = 0;
    const drip = setInterval(() => {
        if (i < head.length && !slow.destroyed)
            slow.write(head[i++]);
    }, 100);
    try {
        const t0 = Date.now();
        const ok = await request(server, 'GET', '/healthz');
        assert.equal(ok.status, 200);
        assert.ok(Date.now() - t0 < 1000, 'the other client was not held up');
        const r = await done;
        assert.ok(r.closed, 'the slow client was disconnected');
        assert.match(r.text, /^HTTP\/1\.1 408 /);
        assert.ok(r.ms < 4000, `cut off after ${r.ms} ms`);
        assert.ok(i < head.length, 'it was cut off before finishing its head');
    } finally {
        clearInterval(drip);
        slow.destroy();
    }
});

test('past max_connections a client hears 503', async () => {
    // Sockets of the earlier tests may still be closing: start from a quiet server.
    await waitFor(async () => {
        const m = await request(server, 'GET', '/metrics');
        return /^chatd_http_connections 1$/m.test(m.text);
    }, { message: 'only the metrics request open' });
    const socks = [];
    try {
        for (let i = 0; i < 40; i++)
            socks.push(await connect());
        // Make sure the server accepted them all.
        const s = socks[socks.length - 1];
        s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
        await readResponses(s, 1);
        const extra = await connect();
        const r = await collect(extra);
        assert.match(r.text, /^HTTP\/1\.1 503 /);
        assert.match(r.text, /"code":"unavailable"/);
    } finally {
        for (const s of socks)
            s.destroy();
    }
    // Once they are gone, new clients are served again.
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
        const r = await request(server, 'GET', '/healthz').catch(() => null);
        ok = r?.status === 200;
        if (!ok)
            await new Promise((res) => setTimeout(res, 20));
    }
    assert.ok(ok);
});

test('SIGTERM: readyz turns 503 on a kept connection, then the process exits 0', async () => {
    const s = await connect();
    s.write('GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n');
    const [first] = await readResponses(s, 1);
    assert.equal(first.status, 200);
    const done = collect(s);
    server.proc.kill('SIGTERM');
    // The listener closes at once; the kept connection may still ask before it is closed.
    await new Promise((res) => setTimeout(res, 50));
    if (!s.destroyed)
        s.write('GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n');
    const r = await done;
    assert.ok(r.closed, 'kept connections are closed by the drain');
    // Whether the second request got in before the close depends on how fast the
    // modules drained; if it did, readiness was already withdrawn.
    if (r.text)
        assert.match(r.text, /^HTTP\/1\.1 503 [\s\S]*"code":"unavailable"/);
    // Wait for the exit this SIGTERM causes (a second signal is not part of the test).
    const proc = server.proc;
    const st = proc.exitCode !== null || proc.signalCode !== null
        ? { code: proc.exitCode, signal: proc.signalCode }
        : await new Promise((res, rej) => {
            // The timer also keeps this process's loop alive until the exit arrives.
            const timer = setTimeout(() => rej(new Error('chatd did not exit')), 10000);
            proc.once('exit', (code, signal) => { clearTimeout(timer); res({ code, signal }); });
        });
    assert.deepEqual(st, { code: 0, signal: null });
});
