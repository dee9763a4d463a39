// The command line: options, verbs, config errors, the listening line, signals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { api, freePort, runChatd, startServer, tmpDir } from './lib/harness.mjs';

test('--help prints usage with every option and exits 0', async () => {
    for (const flag of ['--help', '-h']) {
        const r = await runChatd([flag]);
        assert.equal(r.code, 0, r.stderr);
        for (const opt of ['-c', '--listen', '--data-dir', '--help', '--version', 'check-config', 'dlq'])
            assert.ok(r.stdout.includes(opt), `${flag} output lacks ${opt}:\n${r.stdout}`);
    }
});

test('--version prints "chatd VERSION" and exits 0', async () => {
    for (const flag of ['--version', '-V']) {
        const r = await runChatd([flag]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^chatd \d+\.\d+\S*\n$/);
    }
});

test('an unknown option or verb exits 2 with usage on stderr', async () => {
    for (const args of [['--no-such-flag'], ['no-such-verb'], ['--listen']]) {
        const r = await runChatd(args);
        assert.equal(r.code, 2, `chatd ${args.join(' ')}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /usage: chatd/);
        assert.equal(r.stdout, '');
    }
});

function writeConf(text) {
    const dir = tmpDir();
    const file = path.join(dir, 'chatd.conf');
    writeFileSync(file, text);
    return { dir, file };
}

test('check-config accepts a good file and prints ok', async () => {
    const { file } = writeConf(`# a comment
[server]
listen = 127.0.0.1:0   # trailing comment
max_connections = 100
[auth]
registration = closed
[log]
level = debug
format = json
`);
    const r = await runChatd(['check-config', '-c', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ok');
});

test('a bad config file is refused naming file, line and key', async () => {
    const cases = [
        ['[server]\nmax_connections = lots\n', 2, 'max_connections'],
        ['[server]\nlisten = 127.0.0.1:8080\nno_such_key = 1\n', 3, 'no_such_key'],
        ['[nowhere]\nkey = 1\n', 1, 'nowhere'],
        ['\n[auth]\nregistration = sometimes\n', 3, 'registration'],
        ['[log]\nlevel = chatty\n', 2, 'level'],
    ];
    for (const [text, line, key] of cases) {
        const { file, dir } = writeConf(text);
        const expect = new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:${line}: \\[?${key}\\]?: \\S`);
        const check = await runChatd(['check-config', '-c', file]);
        assert.notEqual(check.code, 0, `check-config accepted:\n${text}`);
        assert.match(check.stderr, expect);
        assert.doesNotMatch(check.stdout, /ok/);
        // The server itself refuses to start with the same message.
        const run = await runChatd(['-c', file, '--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'data')]);
        assert.notEqual(run.code, 0, `server started with:\n${text}`);
        assert.match(run.stderr, expect);
        assert.doesNotMatch(run.stdout, /listening/);
    }
});

test('a missing config file is an error naming the file', async () => {
    const file = path.join(tmpDir(), 'absent.conf');
    const r = await runChatd(['check-config', '-c', file]);
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(file), r.stderr);
});

test('without -c, ./chatd.conf is read when present, else the defaults', async () => {
    const empty = tmpDir();
    const r1 = await runChatd(['check-config'], { cwd: empty });
    assert.equal(r1.code, 0, r1.stderr);

    const { dir } = writeConf('[server]\nmax_connections = -5\n');
    const r2 = await runChatd(['check-config'], { cwd: dir });
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, /chatd\.conf:2: max_connections: /);
});

test('port 0 prints the port it got, and the server answers there', async () => {
    const s = await startServer();
    try {
        assert.equal(s.host, '127.0.0.1');
        assert.ok(s.port > 0 && s.port < 65536);
        const r = await api(s).get('/healthz');
        assert.equal(r.status, 200);
        assert.deepEqual(r.json, { status: 'ok' });
        assert.match(r.headers['content-type'], /^application\/json/);
    } finally {
        await s.stop();
    }
});

test('--listen overrides the config file and takes a fixed port', async () => {
    const port = await freePort();
    const s = await startServer({ config: '[server]\nlisten = 127.0.0.1:1\n', listen: `127.0.0.1:${port}` });
    try {
        assert.equal(s.port, port);
        assert.equal((await api(s).get('/healthz')).status, 200);
    } finally {
        await s.stop();
    }
});

test('the data directory is created on start', async () => {
    const dir = tmpDir();
    const dataDir = path.join(dir, 'nested', 'data');
    mkdirSync(path.dirname(dataDir));
    const s = await startServer({ dataDir });
    try {
        assert.ok(statSync(dataDir).isDirectory());
    } finally {
        await s.stop();
    }
});

test('SIGTERM and SIGINT stop the server with exit status 0', async () => {
    for (const sig of ['SIGTERM', 'SIGINT']) {
        const s = await startServer();
        assert.equal((await api(s).get('/readyz')).status, 200);
        const code = await s.stop(sig);
        assert.equal(code, 0, `exit after ${sig}: ${JSON.stringify(s.exitStatus)}\n${s.logs()}`);
        // The port is released.
        await assert.rejects(api(s).get('/healthz'), /ECONNREFUSED/);
    }
});

test('a second server on the same data directory starts after the first stops', async () => {
    const s = await startServer();
    await s.stop();
    await s.restart();
    try {
        assert.equal((await api(s).get('/healthz')).status, 200);
        assert.ok(existsSync(s.dataDir));
    } finally {
        await s.stop();
    }
});
