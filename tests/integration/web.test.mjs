// The web client end to end: headless Chromium (playwright-core) against the real
// binary. Two people register through the page, one creates a room with the other in
// it, and they talk: live messages, optimistic display then the ack, the unread count,
// the typing line, online dots, a reconnect across a server restart (same port, same
// data), and history loaded by scrolling up. Neither page may log an error of its own.
// A page that was away while more than one sync's worth (500) of a room went by gets
// all of it after the reconnect, asking for the rest only once the first sync is over.
//
// The screenshot of the main screen is written to a temporary file on every run; with
// CHATD_UPDATE_SCREENSHOT=1 it replaces docs/screenshot.png.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
    api, freePort, registerUsers, repoRoot, request, startServer, tmpDir, waitFor, wsConnect,
} from './lib/harness.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking', '--disable-component-update',
    '--disable-sync'];
const PASSWORD = 'correct horse battery';
const T = 15000;   // deadline for anything the page must show

let chromium = null;
let skipWhy = null;
try {
    ({ chromium } = await import('playwright-core'));
} catch {
    skipWhy = 'playwright-core is not installed (run scripts/install-deps.sh)';
}
if (!skipWhy && !existsSync(CHROMIUM))
    skipWhy = `${CHROMIUM} not found (scripts/install-deps.sh installs chromium)`;

// Errors a page logs while the server is down on purpose are the browser reporting
// refused connections, not faults of the page.
const NETWORK_ERROR = /WebSocket connection to .* failed|Failed to load resource: net::ERR_CONNECTION_(REFUSED|RESET|CLOSED)|net::ERR_CONNECTION_REFUSED/;

/** A TCP relay to the server on a port of its own, which the test can cut (every
 * connection dropped, new ones refused) and restore: a page behind it loses its
 * network while the server and everyone else go on. */
async function tcpRelay(server) {
    const port = await freePort();
    const socks = new Set();
    let listener = null;
    const listen = () => new Promise((resolve, reject) => {
        listener = net.createServer((client) => {
            const up = net.connect(server.port, server.host);
            for (const s of [client, up]) {
                socks.add(s);
                s.on('error', () => {});
                s.on('close', () => { socks.delete(s); client.destroy(); up.destroy(); });
            }
            client.pipe(up);
            up.pipe(client);
        });
        listener.once('error', reject);
        listener.listen(port, '127.0.0.1', resolve);
    });
    await listen();
    return {
        url: `http://127.0.0.1:${port}`,
        cut: () => new Promise((resolve) => {
            listener.close(() => resolve());
            for (const s of socks)
                s.destroy();
        }),
        restore: listen,
    };
}

/** One person: a browser of its own (fresh profile), one page, errors collected. */
async function openBrowser(server, name, phase) {
    const context = await chromium.launchPersistentContext(tmpDir('chatd-web-profile-'), {
        executablePath: CHROMIUM, headless: false, args: CHROMIUM_ARGS,
        viewport: { width: 1100, height: 680 },
    });
    const page = context.pages()[0] ?? await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(`${name} pageerror: ${e.stack || e.message}`));
    page.on('console', (m) => {
        if (m.type() !== 'error')
            return;
        if (phase.restarting && NETWORK_ERROR.test(m.text()))
            return;
        // Refusals a step provokes on purpose: {status, url}.
        if (phase.allow?.some((x) => m.text().includes(`status of ${x.status}`) &&
            x.url.test(m.location().url)))
            return;
        // Without presence in the server, the page's question about it is a 404.
        if (phase.noPresence && /status of 404/.test(m.text()) &&
            /\/v1\/presence\?/.test(m.location().url))
            return;
        errors.push(`${name} console.error: ${m.text()} at ${JSON.stringify(m.location())}`);
    });
    await page.goto(server.url + '/');
    return { context, page, errors, name };
}

async function registerInPage(p, username) {
    const { page } = p;
    await page.getByTestId('username').fill(username);
    await page.getByTestId('password').fill(PASSWORD);
    await page.getByTestId('register').click();
    await page.locator('#chat-view').waitFor({ state: 'visible', timeout: T });
    await page.locator('#me-name', { hasText: username }).waitFor({ timeout: T });
    await page.locator('#conn-state', { hasText: /^connected$/ }).waitFor({ timeout: T });
}

/** The messages of the open room, as the page shows them. */
function shownMessages(page) {
    return page.getByTestId('message').evaluateAll((els) => els.map((e) => ({
        seq: e.dataset.seq ? Number(e.dataset.seq) : null,
        body: e.querySelector('.body')?.textContent,
        pending: e.classList.contains('pending'),
        failed: e.classList.contains('failed'),
    })));
}

function messageLocator(page, body) {
    return page.getByTestId('message').filter({ has: page.locator('.body', { hasText: body }) });
}

async function sendInPage(page, body) {
    await page.getByTestId('composer').fill(body);
    await page.getByTestId('send').click();
}

describe('web client in headless Chromium', { skip: skipWhy ?? false }, () => {
    const phase = { restarting: false, noPresence: false, allow: [] };
    let server, alice, bob, aliceApi, bobApi;
    // The server is this file's own: plain names make a readable screenshot.
    const aliceName = 'alice';
    const bobName = 'bob';
    const roomName = 'team';
    let roomId;
    let presenceSkip = null;

    before(async () => {
        // A fixed port, so a restart comes back where the pages reconnect to.
        server = await startServer({ listen: `127.0.0.1:${await freePort()}` });
        [alice, bob] = await Promise.all([
            openBrowser(server, 'alice', phase), openBrowser(server, 'bob', phase)]);
    });

    after(async () => {
        await alice?.context.close().catch(() => {});
        await bob?.context.close().catch(() => {});
        if (server)
            assert.equal(await server.stop(), 0, server.logs());
    });

    it('serves the client with its content types, caching headers and CSP', async () => {
        const want = {
            '/': 'text/html; charset=utf-8',
            '/app.js': 'text/javascript; charset=utf-8',
            '/style.css': 'text/css; charset=utf-8',
            '/sw.js': 'text/javascript; charset=utf-8',
            '/manifest.webmanifest': 'application/manifest+json',
        };
        for (const [p, type] of Object.entries(want)) {
            const r = await request(server, 'GET', p);
            assert.equal(r.status, 200, p);
            assert.equal(r.headers['content-type'], type, p);
            const file = path.join(repoRoot, 'web', p === '/' ? 'index.html' : p.slice(1));
            assert.equal(r.text, readFileSync(file, 'utf8'), `${p}: not the bytes of web/`);
            const csp = r.headers['content-security-policy'];
            assert.ok(csp, `${p}: no Content-Security-Policy`);
            for (const d of ["default-src 'self'", "script-src 'self'", "style-src 'self'",
                "frame-ancestors 'none'"])
                assert.ok(csp.includes(d), `${p}: CSP lacks ${d}: ${csp}`);
            assert.ok(!/unsafe-inline|unsafe-eval/.test(csp), `${p}: CSP allows inline code`);
            assert.equal(r.headers['x-content-type-options'], 'nosniff', p);
            // Every file is revalidated (ETag, 304), so a new version of the server
            // brings its whole client at once: never an old script with a new page.
            assert.equal(r.headers['cache-control'], 'no-cache', p);
            const etag = r.headers.etag;
            assert.ok(etag, `${p}: no ETag`);
            const again = await request(server, 'GET', p, { headers: { 'If-None-Match': etag } });
            assert.equal(again.status, 304, `${p}: If-None-Match`);
            assert.equal(again.text, '');
        }
        // Nothing the page loads comes from anywhere else.
        const html = (await request(server, 'GET', '/')).text;
        assert.ok(!/(src|href)="(https?:)?\/\//.test(html), 'the page names another origin');
        assert.ok(!/<script>|\sstyle=|\son[a-z]+=/.test(html), 'inline code or style in the page');
    });

    it('registers two people through the page', async () => {
        await Promise.all([registerInPage(alice, aliceName), registerInPage(bob, bobName)]);
        // Their own sessions for what the test does over HTTP.
        const login = async (username) => {
            const r = await request(server, 'POST', '/v1/auth/login',
                { body: { username, password: PASSWORD } });
            assert.equal(r.status, 200, r.text);
            return r.json;
        };
        aliceApi = await login(aliceName);
        bobApi = await login(bobName);
        const probe = await api(server).get(`/v1/presence?user_ids=${bobApi.user.id}`,
            { token: aliceApi.access_token });
        if (probe.status === 404)
            presenceSkip = 'GET /v1/presence answers 404: presence is not in this build';
        phase.noPresence = Boolean(presenceSkip);
    });

    it('creates a room in the page; it shows up for the other member', async () => {
        const { page } = alice;
        // An unknown member: the page says so and creates nothing.
        phase.allow = [{ status: 404, url: /\/v1\/rooms$/ }];
        await page.getByTestId('room-name').fill(roomName);
        await page.locator('#room-members').fill('nobody_here');
        await page.getByTestId('new-room').click();
        await page.locator('#side-error', { hasText: 'nobody_here' }).waitFor({ timeout: T });
        assert.equal(await page.getByTestId('room').count(), 0);
        phase.allow = [];
        await page.locator('#room-members').fill(bobName);
        await page.getByTestId('new-room').click();
        await page.locator('#room-title', { hasText: roomName }).waitFor({ timeout: T });
        assert.equal(await page.locator('#side-error').textContent(), '');
        await alice.page.getByTestId('room').filter({ hasText: roomName }).waitFor({ timeout: T });
        await bob.page.getByTestId('room').filter({ hasText: roomName }).waitFor({ timeout: T });
        roomId = Number(await page.getByTestId('room').filter({ hasText: roomName })
            .getAttribute('data-room-id'));
        assert.ok(roomId > 0);
        await page.getByTestId('composer').waitFor({ state: 'visible' });
        assert.equal(await page.getByTestId('composer').isEnabled(), true);
    });

    it('shows a sent message at once as pending, then acked; the other side counts it unread', async () => {
        const { page } = alice;
        // Record every message element the page adds, so the pending state is seen
        // however fast the ack comes back.
        await page.evaluate(() => {
            window.__added = [];
            new MutationObserver((muts) => {
                for (const m of muts)
                    for (const n of m.addedNodes)
                        if (n.dataset?.testid === 'message')
                            window.__added.push({ pending: n.classList.contains('pending'),
                                seq: n.dataset.seq || null,
                                body: n.querySelector('.body')?.textContent });
            }).observe(document.getElementById('messages'), { childList: true });
        });
        await sendInPage(page, 'hello bob');
        assert.equal(await page.getByTestId('composer').inputValue(), '', 'composer not cleared');
        const acked = messageLocator(page, 'hello bob').and(page.locator('[data-seq]'));
        await acked.waitFor({ timeout: T });
        assert.equal(await acked.getAttribute('class'), 'mine');
        const added = await page.evaluate(() => window.__added);
        assert.deepEqual(added.map((a) => [a.body, a.pending]),
            [['hello bob', true], ['hello bob', false]],
            'first the pending element, then the stored one');
        assert.equal(added[1].seq, '1');
        assert.equal(await page.locator('#messages li.pending').count(), 0);

        // Bob has the room closed: a badge with 1.
        const badge = bob.page.getByTestId('room').filter({ hasText: roomName }).getByTestId('unread');
        await badge.filter({ hasText: /^1$/ }).waitFor({ timeout: T });
        await sendInPage(page, 'are you there?');
        await badge.filter({ hasText: /^2$/ }).waitFor({ timeout: T });

        // Opening the room shows both, in order, and clears the badge.
        await bob.page.getByTestId('room').filter({ hasText: roomName }).click();
        await messageLocator(bob.page, 'are you there?').waitFor({ timeout: T });
        assert.deepEqual((await shownMessages(bob.page)).map((m) => [m.seq, m.body]),
            [[1, 'hello bob'], [2, 'are you there?']]);
        await waitFor(async () => await badge.count() === 0,
            { timeout: T, message: 'unread badge gone once the room is open' });
        // ...and the read marker reached the server.
        await waitFor(async () => {
            const r = await api(server).get(`/v1/rooms/${roomId}`, { token: bobApi.access_token });
            return r.json?.room?.unread === 0;
        }, { timeout: T, message: 'bob has no unread messages on the server' });
    });

    it('carries a message typed in one page to the other, with the typing line first', async () => {
        await bob.page.getByTestId('composer').pressSequentially('hi al', { delay: 5 });
        await alice.page.locator('#typing', { hasText: `${bobName} is typing` }).waitFor({ timeout: T });
        await bob.page.getByTestId('composer').press('Enter');   // Enter sends
        await messageLocator(alice.page, 'hi al').and(alice.page.locator('[data-seq="3"]'))
            .waitFor({ timeout: T });
        await messageLocator(bob.page, 'hi al').and(bob.page.locator('[data-seq="3"]'))
            .waitFor({ timeout: T });
        // The message ends the typing line.
        await alice.page.locator('#typing', { hasText: /^$/ }).waitFor({ state: 'attached', timeout: T });
    });

    it('opens a direct conversation by username', async () => {
        await bob.page.locator('#dm-user').fill(aliceName);
        await bob.page.locator('#dm-open').click();
        await bob.page.locator('#room-title', { hasText: `@${aliceName}` }).waitFor({ timeout: T });
        await sendInPage(bob.page, 'psst');
        await messageLocator(bob.page, 'psst').and(bob.page.locator('[data-seq="1"]')).waitFor({ timeout: T });
        const dm = alice.page.getByTestId('room').filter({ hasText: `@${bobName}` });
        await dm.getByTestId('unread').filter({ hasText: /^1$/ }).waitFor({ timeout: T });
        // Back to the group room for the rest.
        await bob.page.getByTestId('room').filter({ hasText: roomName }).click();
        await messageLocator(bob.page, 'hi al').waitFor({ timeout: T });
    });

    it('shows who is online', async (t) => {
        if (presenceSkip)
            return t.skip(presenceSkip);
        const dot = alice.page.locator(
            `[data-testid="presence"][data-user-id="${bobApi.user.id}"]`);
        await dot.and(alice.page.locator('[data-status="online"]')).waitFor({ timeout: T });
        assert.match(await dot.getAttribute('class'), /\bonline\b/);
    });

    it('keeps the main screen as a screenshot', async () => {
        await alice.page.locator('#messages li:not(.pending)').last().scrollIntoViewIfNeeded();
        const file = path.join(tmpDir('chatd-web-shot-'), 'screenshot.png');
        await alice.page.screenshot({ path: file });
        const png = readFileSync(file);
        assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
        if (process.env.CHATD_UPDATE_SCREENSHOT === '1')
            copyFileSync(file, path.join(repoRoot, 'docs/screenshot.png'));
    });

    it('reconnects after the server restarts and gets messages sent after it', async () => {
        const track = (page) => page.evaluate(() => {
            window.__conn = [];
            new MutationObserver(() => window.__conn.push(
                document.getElementById('conn-state').textContent))
                .observe(document.getElementById('conn-state'), { childList: true, characterData: true, subtree: true });
        });
        await Promise.all([track(alice.page), track(bob.page)]);
        phase.restarting = true;
        await server.restart();
        const reconnected = (page) => page.waitForFunction(() =>
            window.__conn.some((s) => s.startsWith('offline')) &&
            document.getElementById('conn-state').textContent === 'connected',
        null, { timeout: 30000 });
        await Promise.all([reconnected(alice.page), reconnected(bob.page)]);
        phase.restarting = false;

        await sendInPage(alice.page, 'still here after the restart');
        await messageLocator(bob.page, 'still here after the restart')
            .and(bob.page.locator('[data-seq="4"]')).waitFor({ timeout: T });
        // A message posted over HTTP arrives live too.
        const r = await api(server).post(`/v1/rooms/${roomId}/messages`, { body: 'over http' },
            { token: bobApi.access_token });
        assert.equal(r.status, 201, r.text);
        await messageLocator(alice.page, 'over http').and(alice.page.locator('[data-seq="5"]'))
            .waitFor({ timeout: T });
        assert.deepEqual((await shownMessages(alice.page)).map((m) => m.seq), [1, 2, 3, 4, 5]);
    });

    it('loads older history when scrolled up', async () => {
        const name = 'history';
        const cr = await api(server).post('/v1/rooms', { name, members: [bobName] },
            { token: aliceApi.access_token });
        assert.equal(cr.status, 201, cr.text);
        const hid = cr.json.room.id;
        for (let i = 1; i <= 120; i++) {
            const r = await api(server).post(`/v1/rooms/${hid}/messages`, { body: `old ${i}` },
                { token: aliceApi.access_token });
            assert.equal(r.status, 201, r.text);
        }
        const { page } = bob;
        const entry = page.getByTestId('room').filter({ hasText: name });
        await entry.getByTestId('unread').filter({ hasText: /^120$/ }).waitFor({ timeout: T });
        await entry.click();
        await messageLocator(page, 'old 120').waitFor({ timeout: T });
        const first = await shownMessages(page);
        assert.ok(first.length < 120, `the first page is not everything (${first.length})`);
        // Scroll to the top until the first message is there, as a reader would.
        await page.waitForFunction(() => {
            const l = document.getElementById('messages');
            l.scrollTop = 0;
            return l.querySelectorAll('[data-testid="message"]').length >= 120;
        }, null, { timeout: T, polling: 100 });
        const all = await shownMessages(page);
        assert.deepEqual(all.map((m) => m.seq), Array.from({ length: 120 }, (_, i) => i + 1));
        assert.deepEqual(all.map((m) => m.body), Array.from({ length: 120 }, (_, i) => `old ${i + 1}`));
    });

    it('shows a person offline once their page is closed', async (t) => {
        if (presenceSkip)
            return t.skip(presenceSkip);
        const errors = [...bob.errors];
        await bob.context.close();
        bob.errors = errors;
        await alice.page.locator(`[data-testid="presence"][data-user-id="${bobApi.user.id}"][data-status="offline"]`)
            .waitFor({ timeout: T });
    });

    it('logged no errors in either page', () => {
        assert.deepEqual([...alice.errors, ...bob.errors], []);
    });
});

describe('web client token refresh', { skip: skipWhy ?? false }, () => {
    const phase = { restarting: false, noPresence: true };
    let server, carol;

    before(async () => {
        // Access tokens of 2 s: the page refreshes them on its own (at the latest 5 s
        // after each login or refresh) and hands the new one to its WebSocket.
        server = await startServer({ config: '[auth]\naccess_ttl = 2\n' });
        carol = await openBrowser(server, 'carol', phase);
    });

    after(async () => {
        await carol?.context.close().catch(() => {});
        if (server)
            assert.equal(await server.stop(), 0, server.logs());
    });

    it('refreshes its tokens, keeps its connection, and stays logged in across a reload', async () => {
        const { page } = carol;
        await registerInPage(carol, 'carol');
        await page.evaluate(() => {
            window.__conn = [];
            new MutationObserver(() => window.__conn.push(
                document.getElementById('conn-state').textContent))
                .observe(document.getElementById('conn-state'), { childList: true, characterData: true, subtree: true });
        });
        const first = await page.evaluate(() => localStorage.getItem('chatd.refresh'));
        assert.ok(first, 'a refresh token is kept');
        await page.waitForFunction((t) => localStorage.getItem('chatd.refresh') !== t, first,
            { timeout: 15000 });
        // The access token the page started with has expired: everything below runs on
        // refreshed ones.
        await page.getByTestId('room-name').fill('notes');
        await page.getByTestId('new-room').click();
        await page.locator('#room-title', { hasText: 'notes' }).waitFor({ timeout: T });
        await sendInPage(page, 'note to self');
        await messageLocator(page, 'note to self').and(page.locator('[data-seq="1"]')).waitFor({ timeout: T });
        assert.deepEqual(await page.evaluate(() => window.__conn), [], 'the WebSocket never dropped');

        await page.reload();
        await page.locator('#me-name', { hasText: 'carol' }).waitFor({ timeout: T });
        await page.getByTestId('room').filter({ hasText: 'notes' }).click();
        await messageLocator(page, 'note to self').waitFor({ timeout: T });
        assert.deepEqual(carol.errors, []);
    });
});

describe('web client sync after a long absence', { skip: skipWhy ?? false }, () => {
    const MISSED = 650;               // more than the 500 of a room one sync replays
    const phase = { restarting: false, noPresence: true };
    let server, relay, dave, erin;

    before(async () => {
        server = await startServer();
        relay = await tcpRelay(server);
        dave = await openBrowser(relay, 'dave', phase);
        [erin] = await registerUsers(server, ['erin']);
    });

    after(async () => {
        await dave?.context.close().catch(() => {});
        await relay?.cut();
        if (server)
            assert.equal(await server.stop(), 0, server.logs());
    });

    it('shows every message of a room with more than one sync of them missed, without a conflict', async () => {
        const { page } = dave;
        await registerInPage(dave, 'dave');
        // The frames the page takes and sends, in the order its code sees them: the
        // recorder's listener is the first on each socket, so it runs before the page's.
        await page.addInitScript(() => {
            window.__ws = [];
            const Real = window.WebSocket;
            window.WebSocket = class extends Real {
                constructor(...args) {
                    super(...args);
                    this.addEventListener('message', (ev) => {
                        const f = JSON.parse(ev.data);
                        window.__ws.push(`< ${f.type}${f.code ? ' ' + f.code : ''}`);
                    });
                }
                send(data) {
                    window.__ws.push(`> ${JSON.parse(data).type}`);
                    return super.send(data);
                }
            };
        });
        await page.reload();
        await page.locator('#conn-state', { hasText: /^connected$/ }).waitFor({ timeout: T });
        const ids = [];
        for (const name of ['busy', 'quiet']) {
            const cr = await api(server).post('/v1/rooms', { name, members: ['dave'] },
                { token: erin.access_token });
            assert.equal(cr.status, 201, cr.text);
            ids.push(cr.json.room.id);
            await page.getByTestId('room').filter({ hasText: name }).waitFor({ timeout: T });
        }
        // The page syncs its rooms in the order it learnt them: the busy one is cut at
        // 500 while the quiet one's replay is still to come, so the sync still runs.
        await page.waitForFunction(() => state.lastSeq.size === 2, null, { timeout: T });
        const [rid, quiet] = await page.evaluate(() => [...state.lastSeq.keys()]);
        assert.deepEqual([rid, quiet].sort(), [...ids].sort());
        await page.locator(`[data-testid="room"][data-room-id="${rid}"]`).click();
        await page.locator('#room-title', { hasText: rid === ids[0] ? 'busy' : 'quiet' })
            .waitFor({ timeout: T });

        phase.restarting = true;      // the page's refused connections are expected now
        await relay.cut();
        await page.locator('#conn-state', { hasText: /^offline/ }).waitFor({ timeout: T });
        const w = await wsConnect(server, erin.access_token);
        await w.next('hello');
        for (let i = 1; i <= MISSED; i++) {
            w.send({ type: 'send', room_id: rid, body: `missed ${i}`, client_msg_id: `m${i}` });
            if (i % 100 === 0 || i === MISSED)
                await waitFor(() => w.frames.filter((f) => f.type === 'ack').length === i,
                    { timeout: 30000, message: `acks for ${i} sends` });
        }
        w.send({ type: 'send', room_id: quiet, body: 'quiet one', client_msg_id: 'q1' });
        await w.next({ type: 'ack', client_msg_id: 'q1' }, 30000);
        await w.close();
        await relay.restore();
        // The page retries at most every 10 s; then one sync of 500 and its sequel.
        await page.locator('#conn-state', { hasText: /^connected$/ }).waitFor({ timeout: 30000 });
        phase.restarting = false;
        await page.waitForFunction((n) =>
            document.querySelectorAll('#messages [data-testid="message"]').length >= n,
        MISSED, { timeout: 30000, polling: 100 });
        const shown = await shownMessages(page);
        assert.deepEqual(shown.map((m) => m.seq), Array.from({ length: MISSED }, (_, i) => i + 1));
        assert.deepEqual(shown.map((m) => m.body), Array.from({ length: MISSED }, (_, i) => `missed ${i + 1}`));
        // One sync at a time: each one the page sends waits for the last one's synced.
        const log = await page.evaluate(() => window.__ws);
        let running = false;
        log.forEach((f, i) => {
            if (f === '> sync') {
                assert.ok(!running, `a sync sent while one runs, at ${i}: ${log.slice(Math.max(0, i - 3), i + 1)}`);
                running = true;
            } else if (f === '< synced') {
                running = false;
            }
        });
        assert.equal(log.filter((f) => f === '< sync.truncated').length, 1, 'the busy room was cut');
        assert.deepEqual(log.filter((f) => f.startsWith('< error')), []);
        assert.deepEqual(dave.errors, []);
    });
});
