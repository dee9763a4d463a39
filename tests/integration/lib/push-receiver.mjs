// push-receiver.mjs: an HTTPS server that plays a Web Push service and a webhook
// receiver for chatd, with a certificate from a throwaway CA made with the openssl
// command (given to chatd as [notification] ca_file).
//
// It records every request (method, path, headers, body, conn: the number of the TLS
// connection it came on) and answers with the status that answer(req) returns (default
// 201; 0 holds the request unanswered until close()), after delayMs (default 0).
// connections counts the TLS connections accepted, open those open now, peakOpen the
// most open at once; server is the https.Server.
// A test waits for requests with next(pred).
// Checking a push (decrypting it with http_ece, verifying its VAPID token with jose) is
// in checkPush(), so a test can also run it on requests made by the npm web-push
// library, to show that the checker itself is right.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import ece from 'http_ece';
import { importJWK, jwtVerify, decodeProtectedHeader } from 'jose';

/** A CA and a leaf certificate for 127.0.0.1 and localhost, in dir. */
export function makeCertificates(dir) {
    const run = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const p = (f) => path.join(dir, f);
    run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=chatd test CA');
    run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', p('leaf.key'), '-out', p('leaf.csr'), '-subj', '/CN=localhost');
    writeFileSync(p('leaf.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' +
        'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
    run('x509', '-req', '-in', p('leaf.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'),
        '-CAcreateserial', '-out', p('leaf.pem'), '-days', '2', '-extfile', p('leaf.ext'));
    return { caFile: p('ca.pem'), key: readFileSync(p('leaf.key')), cert: readFileSync(p('leaf.pem')) };
}

/** Starts the receiver on 127.0.0.1, port 0. */
export async function startReceiver({ key, cert }) {
    const requests = [];
    const waiters = [];
    const rec = {
        requests,
        answer: () => 201,
        origin: null,
        url: (p) => `${rec.origin}${p}`,
        /** The first recorded or future request matching pred (by default any). */
        next(pred = () => true, timeout = 10000) {
            const hit = requests.find((r) => !r.taken && pred(r));
            if (hit) {
                hit.taken = true;
                return Promise.resolve(hit);
            }
            return new Promise((resolve, reject) => {
                const w = { pred, resolve };
                w.timer = setTimeout(() => {
                    waiters.splice(waiters.indexOf(w), 1);
                    reject(new Error(`receiver: no matching request within ${timeout} ms; got ` +
                        JSON.stringify(requests.map((r) => `${r.method} ${r.path} -> ${r.status}`))));
                }, timeout);
                waiters.push(w);
            });
        },
        /** Every request so far matching pred (taken or not). */
        all: (pred = () => true) => requests.filter(pred),
        delayMs: 0,
        connections: 0,
        open: 0,
        peakOpen: 0,
        server: null,
        close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
    };
    const server = https.createServer({ key, cert }, (req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const r = { method: req.method, path: req.url, headers: req.headers,
                body: Buffer.concat(chunks), at: Date.now(), conn: req.socket.chatdConn };
            r.status = rec.answer(r);
            requests.push(r);
            const status = r.status;
            const reply = () => {
                res.writeHead(status, { 'Content-Type': 'text/plain' });
                res.end(String(status));
            };
            if (status && rec.delayMs > 0)
                setTimeout(reply, rec.delayMs);
            else if (status)
                reply();
            const i = waiters.findIndex((w) => w.pred(r));
            if (i >= 0) {
                const [w] = waiters.splice(i, 1);
                clearTimeout(w.timer);
                r.taken = true;
                w.resolve(r);
            }
        });
    });
    server.on('secureConnection', (sock) => {
        sock.chatdConn = ++rec.connections;
        rec.open++;
        rec.peakOpen = Math.max(rec.peakOpen, rec.open);
        sock.on('close', () => { rec.open--; });
    });
    rec.server = server;
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    rec.origin = `https://127.0.0.1:${server.address().port}`;
    return rec;
}

/** A browser's side of a subscription: a P-256 key pair and an auth secret. */
export function makeSubscription(endpoint) {
    const ecdh = crypto.createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = crypto.randomBytes(16);
    return {
        ecdh, auth,
        json: { endpoint, keys: { p256dh: ecdh.getPublicKey().toString('base64url'),
            auth: auth.toString('base64url') } },
    };
}

/**
 * Checks one push request as a push service and a browser would: the headers, the
 * VAPID token (RFC 8292, verified with jose against vapidKey, the base64url public key),
 * and the payload (decrypted with http_ece). Returns {plain (text), payload (plain
 * parsed, or undefined when it is not JSON), claims}.
 */
export async function checkPush(r, sub, vapidKey, audience) {
    const h = r.headers;
    if (h['content-encoding'] !== 'aes128gcm')
        throw new Error(`Content-Encoding: ${h['content-encoding']}`);
    if (!(Number(h.ttl) >= 0))
        throw new Error(`TTL: ${h.ttl}`);
    const m = /^vapid t=([\w-]+\.[\w-]+\.[\w-]+), k=([\w-]+)$/.exec(h.authorization ?? '');
    if (!m)
        throw new Error(`Authorization: ${h.authorization}`);
    if (m[2] !== vapidKey)
        throw new Error(`k=${m[2]} is not the server's key ${vapidKey}`);
    const raw = Buffer.from(vapidKey, 'base64url');
    const jwk = { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'),
        y: raw.subarray(33, 65).toString('base64url') };
    const alg = decodeProtectedHeader(m[1]).alg;
    if (alg !== 'ES256')
        throw new Error(`alg ${alg}`);
    const { payload: claims } = await jwtVerify(m[1], await importJWK(jwk, 'ES256'),
        { audience, algorithms: ['ES256'] });
    if (!(claims.exp > Date.now() / 1000 && claims.exp <= Date.now() / 1000 + 24 * 3600))
        throw new Error(`exp ${claims.exp} is not within 24 h`);
    const plain = ece.decrypt(r.body, { version: 'aes128gcm', privateKey: sub.ecdh,
        authSecret: sub.auth });
    const text = plain.toString('utf8');
    let payload;
    try { payload = JSON.parse(text); } catch { payload = undefined; }
    return { plain: text, payload, claims };
}
