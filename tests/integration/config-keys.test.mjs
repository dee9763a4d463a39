// `chatd --help-config` prints every key from the tables the parser reads; chatd.conf,
// README.md's table and docs/api.md's list exactly those keys, each once, at its default.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, runChatd, tmpDir } from './lib/harness.mjs';

/** [{ section, key, value }] of an INI text: '#' starts a comment after a blank. */
function iniKeys(text) {
    const out = [];
    let section = null;
    for (const raw of text.split('\n')) {
        const line = raw.replace(/(^|[ \t])#.*$/, '').trim();
        if (!line)
            continue;
        const sec = line.match(/^\[\s*([^\]]*?)\s*\]$/);
        if (sec) {
            section = sec[1];
            continue;
        }
        const eq = line.indexOf('=');
        assert.ok(eq > 0 && section, `not a key line: ${raw}`);
        out.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() });
    }
    return out;
}

/** The ```ini block that follows `marker` in a Markdown file. */
function iniBlockAfter(file, marker) {
    const text = readFileSync(path.join(repoRoot, file), 'utf8');
    const at = text.indexOf(marker);
    assert.ok(at >= 0, `${file}: no "${marker}"`);
    const start = text.indexOf('```ini\n', at);
    const end = text.indexOf('\n```', start + 7);
    assert.ok(start >= 0 && end > start, `${file}: no ini block after "${marker}"`);
    return text.slice(start + 7, end + 1);
}

const names = (keys) => keys.map((k) => `[${k.section}] ${k.key}`);

function assertSameKeys(label, keys, want) {
    const got = names(keys);
    const dups = got.filter((n, i) => got.indexOf(n) !== i);
    assert.deepEqual(dups, [], `${label}: listed twice`);
    const wantNames = names(want);
    assert.deepEqual(got.filter((n) => !wantNames.includes(n)), [], `${label}: not a key of chatd`);
    assert.deepEqual(wantNames.filter((n) => !got.includes(n)), [], `${label}: missing`);
}

async function helpKeys() {
    const r = await runChatd(['--help-config']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    return { text: r.stdout, keys: iniKeys(r.stdout) };
}

test('--help-config gives every key a kind, its help and its default', async () => {
    const { text, keys } = await helpKeys();
    assert.ok(keys.length >= 40, `only ${keys.length} keys:\n${text}`);
    const lines = text.split('\n');
    for (const { section, key } of keys) {
        const i = lines.findIndex((l) => l.startsWith(`${key} =`));
        assert.ok(i > 0 && /^# .+ \(.+\)$/.test(lines[i - 1]),
                  `[${section}] ${key}: no "# help (kind)" line above it`);
    }
    assert.match(text, /# .*\(integer, 1 to 1000000\)\nmax_connections = 10000\n/);
    assert.match(text, /# .*\(debug, info, warn or error\)\nlevel = info\n/);
    assert.match(text, /# .*\(number, 0\.001 to 1e\+06\)\nmessages_per_s = 20\n/);
});

test('--help names --help-config', async () => {
    const r = await runChatd(['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /--help-config/);
});

test('the --help-config output is itself a valid chatd.conf', async () => {
    const { text } = await helpKeys();
    const file = path.join(tmpDir(), 'help.conf');
    writeFileSync(file, text);
    const r = await runChatd(['check-config', '-c', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ok');
});

test('chatd.conf lists exactly the keys of --help-config, at their defaults', async () => {
    const { keys } = await helpKeys();
    const conf = iniKeys(readFileSync(path.join(repoRoot, 'chatd.conf'), 'utf8'));
    assertSameKeys('chatd.conf', conf, keys);
    for (const k of conf) {
        const d = keys.find((h) => h.section === k.section && h.key === k.key);
        assert.equal(k.value, d.value, `chatd.conf [${k.section}] ${k.key}: not the default`);
    }
});

test("README.md's and docs/api.md's tables list exactly the keys of --help-config", async () => {
    const { keys } = await helpKeys();
    assertSameKeys('README.md', iniKeys(iniBlockAfter('README.md', 'The keys and their defaults')),
                   keys);
    assertSameKeys('docs/api.md',
                   iniKeys(iniBlockAfter('docs/api.md', 'stops the start with `file:line: key: reason`')),
                   keys);
});
