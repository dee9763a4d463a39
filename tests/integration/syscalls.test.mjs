// The shipped systemd unit's SystemCallFilter= against the system calls chatd really
// makes: chatd starts and serves a little under strace, and every call it made must be
// one the unit lets through, or chatd would die of SIGSYS under systemd.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
    api, registerAndLogin, repoRoot, engine, startServer, tmpDir, waitFor, wsConnect,
} from './lib/harness.mjs';
import { makeCertificates, makeSubscription, startReceiver } from './lib/push-receiver.mjs';
import {
    allows, expandGroup, killedBy, parseSummary, securityVerdicts, stopTraced, straceWorks, tracedEnv,
    tracedPid, unitFilter, which,
} from './lib/strace.mjs';

const unitText = readFileSync(path.join(repoRoot, 'contrib/chatd.service'), 'utf8');
const as = (u) => ({ token: u.access_token });

/* Start, accounts, a room, a message by HTTP and one by WebSocket, history, and with a
 * receiver a push and a webhook for the member who is offline: with the log reopen,
 * the crash and the drain of the test, the paths a production server walks in its
 * first minute. Returns what a restart needs. */
async function workload(server, receiver = null) {
    const [alice, bob, carol] = [await registerAndLogin(server), await registerAndLogin(server),
        await registerAndLogin(server)];
    const http = api(server);
    const room = (await http.post('/v1/rooms', { name: 'sys', members: [bob.username, carol.username] }, as(alice))).json.room;
    assert.ok(room, 'room created');
    if (receiver) {
        const sub = makeSubscription(receiver.url('/push/carol'));
        assert.equal((await http.post('/v1/push/subscriptions', sub.json, as(carol))).status, 201);
    }
    const ws = await wsConnect(server, bob.access_token);
    ws.send({ type: 'send', room_id: room.id, body: 'by websocket', client_msg_id: 'sys-1' });
    assert.equal((await ws.next('ack', 30000)).client_msg_id, 'sys-1');
    const posted = await http.post(`/v1/rooms/${room.id}/messages`, { body: 'by http' }, as(alice));
    assert.equal(posted.status, 201, posted.text);
    await ws.next('message', 30000);
    const history = await http.get(`/v1/rooms/${room.id}/messages`, as(bob));
    assert.equal(history.status, 200, history.text);
    await ws.close();
    if (receiver)
        await outbound(http, receiver);
    return { bob, room };
}

async function outbound(http, receiver) {
    // Outbound HTTPS: DNS on the thread pool, TCP, TLS. The push goes to an address;
    // the webhook to a name, resolved from /etc/hosts, delivered or (where localhost
    // is ::1 first and the receiver listens on 127.0.0.1 only) failed: the calls are
    // made either way.
    await receiver.next((r) => r.path === '/push/carol', 30000);
    await waitFor(async () => /chatd_notifications_total\{channel="webhook",result="(ok|failed)"\} [1-9]/
        .test((await http.get('/metrics')).text), { timeout: 30000, message: 'a webhook attempt' });
}

/*
 * The unit runs chatd as an unprivileged dynamic user, and some calls are made only as
 * root (SQLite gives a new WAL the database's owner with fchown when euid is 0): as root,
 * strace runs chatd as nobody, with its directories made reachable and its own.
 * The wrapper is a shell that gets chatd's command line: $1 the binary, $3 -c's file.
 */
function asServiceUser(work, ownDirs, strace) {
    if (process.getuid() !== 0)
        return strace;
    for (const d of ownDirs)
        mkdirSync(d, { mode: 0o700 });
    const script = [
        `chmod 0711 "${work}" "$(dirname "$3")"`,
        `chmod 0644 "$3"`,
        ...ownDirs.map((d) => `chown nobody: "${d}"`),
        `exec ${[...strace, '-u', 'nobody'].map((w) => `'${w}'`).join(' ')} "$@"`,
    ].join(' && ');
    return ['sh', '-c', script, 'chatd-as-nobody'];
}

describe('systemd unit and the system calls chatd makes', { skip: straceWorks() && which('systemd-analyze') ? false : 'needs strace (with ptrace allowed, no $CHATD_WRAPPER) and systemd-analyze' }, () => {
    it('reads the groups from systemd-analyze, nested ones included', () => {
        // @system-service names @resources rather than its calls.
        assert.ok(expandGroup('@system-service').has('setpriority'));
        const filter = unitFilter('SystemCallFilter=@system-service\nSystemCallFilter=~@resources\n');
        assert.deepEqual(killedBy(filter, ['read', 'setpriority']), ['setpriority']);
        const deny = unitFilter('SystemCallFilter=~@resources\nSystemCallFilter=setpriority\n');
        assert.deepEqual(killedBy(deny, ['read', 'setpriority', 'sched_setaffinity']), ['sched_setaffinity']);
        const soft = unitFilter('SystemCallFilter=~@resources\nSystemCallErrorNumber=EPERM\n');
        assert.deepEqual(killedBy(soft, ['setpriority']), []);
    });

    it('reads SystemCallFilter= lines as systemd does, group by group', () => {
        // The shipped lines, and the rules of systemd.exec(5) they could run into: a
        // deny-list first, a call given back to it, a reset, an errno instead of a kill.
        const variants = [null, '~@clock @debug\nSystemCallFilter=clock_settime',
            '@system-service\nSystemCallFilter=~@resources\nSystemCallFilter=\nSystemCallFilter=@system-service @clock',
            '@system-service\nSystemCallFilter=~@resources:EPERM',
            '~@privileged\nSystemCallFilter=~@resources\nSystemCallFilter=setpriority'];
        const dir = tmpDir('chatd-unit-');
        for (const v of variants) {
            const text = v === null ? unitText : unitText.replace(/^SystemCallFilter=.*\n/gm, '')
                .replace('[Install]', `SystemCallFilter=${v}\n\n[Install]`);
            const file = path.join(dir, 'chatd.service');
            writeFileSync(file, text);
            const verdicts = securityVerdicts(file);
            assert.ok(verdicts.size >= 5, `systemd-analyze security judged ${verdicts.size} groups`);
            const filter = unitFilter(text);
            for (const [group, someAllowed] of verdicts) {
                assert.equal([...expandGroup(group)].some((c) => allows(filter, c)), someAllowed,
                    `${group} with SystemCallFilter=${v ?? '(shipped)'}`);
            }
        }
    });

    it('makes no call the shipped unit forbids, from start through a crash and a restart to SIGTERM', async () => {
        const work = tmpDir('chatd-strace-');
        const summaries = [path.join(work, 'summary-1.txt'), path.join(work, 'summary-2.txt')];
        const traced = (i, ownDirs) => asServiceUser(work, ownDirs,
            ['strace', '-f', '-qq', '-c', '-o', summaries[i]]);
        const dataDir = path.join(work, 'data');
        const logDir = path.join(work, 'log');
        const log = path.join(logDir, 'chatd.log');
        const certs = makeCertificates(work);
        const receiver = await startReceiver(certs);
        const port = new URL(receiver.origin).port;
        const server = await startServer({
            wrapper: traced(0, [dataDir, logDir]), dataDir,
            config: `[log]\nfile = ${log}\n[notification]\nca_file = ${certs.caFile}\n` +
                `webhook_url = https://localhost:${port}/hook\nwebhook_secret = s\nmax_attempts = 1\n` +
                // The receiver is on loopback, which push endpoints may not name by default.
                `allow_private_endpoints = yes\n`,
            // Nobody listens there: the notifications fail, but their calls are made.
            env: tracedEnv({ NOTIFY_SOCKET: path.join(work, 'notify.sock'), WATCHDOG_USEC: '200000' }),
        });
        try {
            const { bob, room } = await workload(server, receiver);
            process.kill(tracedPid(server), 'SIGHUP');
            await waitFor(() => /log reopened/.test(readFileSync(log, 'utf8')),
                { timeout: 30000, message: '"log reopened" after SIGHUP' });
            // Restart=on-failure starts it again on what the crash left: a WAL to recover.
            assert.equal((await stopTraced(server, 'SIGKILL')).signal, 'SIGKILL');
            await server.restart({ wrapper: traced(1, []) });
            const ws = await wsConnect(server, bob.access_token);
            ws.send({ type: 'send', room_id: room.id, body: 'after the crash', client_msg_id: 'sys-2' });
            assert.equal((await ws.next('ack', 30000)).client_msg_id, 'sys-2');
            // SIGTERM with the WebSocket open: the drain closes it.
            const st = await stopTraced(server, 'SIGTERM');
            assert.equal(st.code, 0, server.logs());
        } finally {
            await receiver.close();
        }
        const used = new Set(summaries.flatMap((f) => [...parseSummary(readFileSync(f, 'utf8')).keys()]));
        // SQLite syncs its WAL itself; on PostgreSQL the server does and chatd only talks
        // to it (libpq's calls are in the trace and held to the filter below).
        const expected = engine === 'pg' ? ['connect', 'accept4'] : ['fdatasync', 'connect', 'accept4'];
        for (const call of expected)
            assert.ok(used.has(call), `the trace holds ${call}: ${[...used].sort().join(' ')}`);
        const filter = unitFilter(unitText);
        assert.equal(filter.allow, true, 'the unit has an allow-list (SystemCallFilter=@system-service)');
        assert.deepEqual(killedBy(filter, used), [],
            'calls contrib/chatd.service forbids (systemd would kill chatd with SIGSYS)');
    });

    it('goes on when its threads may not lower their priority (EPERM), saying so at debug', async () => {
        const server = await startServer({
            wrapper: ['strace', '-f', '-qq', '-o', '/dev/null',
                '-e', 'trace=sched_setscheduler,setpriority',
                '-e', 'inject=sched_setscheduler,setpriority:error=EPERM'],
            config: '[log]\nlevel = debug\n', env: tracedEnv(),
        });
        await workload(server);
        const st = await stopTraced(server, 'SIGTERM');
        assert.equal(st.code, 0, server.logs());
        assert.match(server.logs(), /thread stays in the normal class thread=writer error="Operation not permitted"/);
        if (engine !== 'pg')        // PostgreSQL checkpoints in its own processes
            assert.match(server.logs(), /checkpoint thread keeps its nice value error="Operation not permitted"/);
    });
});
