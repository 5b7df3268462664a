// SDL sections 2-4 (field, XOF, Shamir) written from the specification alone.
// Node.js, BigInt, no dependencies.
//   node sdl_consumer.mjs serve        JSON-lines requests on stdin, one response per line
//   node sdl_consumer.mjs replay DIR   replay field/xof/shamir vectors under DIR
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

class SdlError extends Error { constructor(name, msg) { super(msg); this.sdlName = name; } }
const fail = (name, msg) => { throw new SdlError(name, msg); };

// ---------------------------------------------------------------- decimals
const CANONICAL = /^(0|[1-9][0-9]*)$/;
function parseDec(s, what, errName = 'EncodingError') {
  if (typeof s !== 'string' || !CANONICAL.test(s)) fail(errName, `${what}: not a canonical decimal string: ${JSON.stringify(s)}`);
  return BigInt(s);
}
function parseSmall(n, what) {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) fail('ParameterError', `${what}: not a non-negative integer`);
  return n;
}
const bitlen = (n) => (n === 0n ? 0 : n.toString(2).length);

// ---------------------------------------------------------------- field (section 2)
const M61 = (1n << 61n) - 1n;
function modpow(b, e, m) {
  let r = 1n; b %= m;
  while (e > 0n) { if (e & 1n) r = (r * b) % m; b = (b * b) % m; e >>= 1n; }
  return r;
}
const MR_BASES = [2n, 3n, 5n, 7n, 11n, 13n, 17n, 19n, 23n, 29n, 31n, 37n, 41n];
function isPrime(n) {
  if (n < 2n) return false;
  for (const b of MR_BASES) if (n % b === 0n) return n === b;
  let d = n - 1n, s = 0;
  while ((d & 1n) === 0n) { d >>= 1n; s++; }
  outer: for (const b of MR_BASES) {
    let x = modpow(b, d, n);
    if (x === 1n || x === n - 1n) continue;
    for (let i = 0; i < s - 1; i++) { x = (x * x) % n; if (x === n - 1n) continue outer; }
    return false;
  }
  return true;
}
class Field {
  constructor(p) {
    if (!((p < (1n << 32n) || p === M61) && isPrime(p))) fail('ParameterError', `unsupported modulus ${p}`);
    this.p = p;
    this.bits = bitlen(p - 1n);
    this.size = Math.ceil(this.bits / 8);
  }
  static parse(text) { return new Field(parseDec(text, 'modulus', 'ParameterError')); }
  elem(s) { const v = parseDec(s, 'element'); if (v >= this.p) fail('EncodingError', `element ${v} >= p`); return v; }
  vec(a) { if (!Array.isArray(a)) fail('EncodingError', 'elements must be an array'); return a.map((s) => this.elem(s)); }
  mod(x) { const r = x % this.p; return r < 0n ? r + this.p : r; }
  add(a, b) { return this.mod(a + b); }
  sub(a, b) { return this.mod(a - b); }
  mul(a, b) { return this.mod(a * b); }
  neg(a) { return this.mod(-a); }
  inv(a) { if (a === 0n) fail('ParameterError', 'inverse of 0'); return modpow(a, this.p - 2n, this.p); }
  encode(vs) {
    const out = Buffer.alloc(vs.length * this.size);
    vs.forEach((v, i) => { for (let j = 0; j < this.size; j++) out[i * this.size + j] = Number((v >> BigInt(8 * j)) & 0xffn); });
    return out.toString('hex');
  }
  decode(hex) {
    if (typeof hex !== 'string' || !/^([0-9a-f]{2})*$/.test(hex)) fail('EncodingError', 'not lowercase hex');
    const b = Buffer.from(hex, 'hex');
    if (b.length % this.size !== 0) fail('EncodingError', 'length not a multiple of ENCODED_SIZE');
    const out = [];
    for (let i = 0; i < b.length; i += this.size) {
      const v = leInt(b.subarray(i, i + this.size));
      if (v >= this.p) fail('EncodingError', `encoded value ${v} >= p`);
      out.push(v);
    }
    return out;
  }
  half() { return (this.p - 1n) / 2n; }
  signedDecode(v) { return v <= this.half() ? v : v - this.p; }
  signedEncode(x) { const h = this.half(); if (x < -h || x > h) fail('EncodingError', 'out of [-h, h]'); return this.mod(x); }
}
function leInt(bytes) { let v = 0n; for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]); return v; }
function parseSigned(s) {
  if (typeof s !== 'string' || !/^-?(0|[1-9][0-9]*)$/.test(s)) fail('EncodingError', `bad signed decimal ${s}`);
  return BigInt(s);
}

// ---------------------------------------------------------------- XOF (section 3)
const XOF_CONTEXT = Buffer.from('SDL-XOF-v1', 'ascii');
function parseSeed(hex) {
  if (typeof hex !== 'string' || !/^([0-9a-f]{2})*$/.test(hex)) fail('ParameterError', 'seed must be lowercase hex');
  const b = Buffer.from(hex, 'hex');
  if (b.length !== 32) fail('ParameterError', `seed must be exactly 32 bytes; got ${b.length}`);
  return b;
}
function encodeTag(tag) {
  if (tag === null || typeof tag !== 'object') fail('ParameterError', 'tag must be an object');
  const keys = Object.keys(tag).sort();
  if (Array.isArray(tag) || keys.length !== 2 || keys[0] !== 'params' || keys[1] !== 'purpose') fail('ParameterError', 'tag must be {purpose, params}');
  const { purpose, params } = tag;
  if (typeof purpose !== 'string' || purpose.length < 1 || purpose.length > 255 || !/^[\x20-\x7e]+$/.test(purpose)) fail('ParameterError', 'bad purpose');
  if (!Array.isArray(params) || params.length > 255) fail('ParameterError', 'bad params');
  const parts = [Buffer.from([purpose.length]), Buffer.from(purpose, 'ascii'), Buffer.from([params.length])];
  for (const s of params) {
    const v = parseDec(s, 'tag param', 'ParameterError');
    if (v >= (1n << 64n)) fail('ParameterError', 'tag param out of [0, 2^64)');
    const b = Buffer.alloc(8); b.writeBigUInt64LE(v); parts.push(b);
  }
  return Buffer.concat(parts);
}
class Xof {
  constructor(seed, tag) { this.input = Buffer.concat([XOF_CONTEXT, seed, encodeTag(tag)]); this.buf = Buffer.alloc(0); this.pos = 0; }
  nextBytes(n) {
    if (n < 0) fail('ParameterError', 'negative n');
    if (this.pos + n > this.buf.length) {
      const len = Math.max(2 * this.buf.length, this.pos + n, 168);
      this.buf = createHash('shake128', { outputLength: len }).update(this.input).digest();
    }
    const out = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return out;
  }
  uniformInt(bound) {
    if (typeof bound !== 'bigint' || bound < 1n) fail('ParameterError', 'bound must be >= 1');
    const bits = bitlen(bound - 1n); const width = Math.ceil(bits / 8); const mask = (1n << BigInt(bits)) - 1n;
    for (;;) { const c = leInt(this.nextBytes(width)) & mask; if (c < bound) return c; }
  }
  uniformInts(bound, count) {
    // The bound is checked before the count, and also when nothing is drawn.
    if (typeof bound !== 'bigint' || bound < 1n) fail('ParameterError', 'bound must be >= 1');
    parseSmall(count, 'count');
    const out = []; for (let i = 0; i < count; i++) out.push(this.uniformInt(bound)); return out;
  }
  bernoulli(num, den) {
    if (den < 1n || num < 0n || num > den) fail('ParameterError', 'bad bernoulli parameters');
    return this.uniformInt(den) < num;
  }
}

// ---------------------------------------------------------------- Shamir (section 4)
// Order of checks: spec/11-conformance.md#reading-requests (the shares are read
// first, then the scheme's parameters, then reconstruct's own checks).
function readShare(F, sh, i) {
  if (sh === null || typeof sh !== 'object' || Array.isArray(sh) || !('x' in sh) || !('y' in sh)) fail('ParameterError', `share ${i}: not an object with x and y`);
  const x = parseDec(sh.x, `share ${i} point`, 'ParameterError');
  if (x < 1n || x >= F.p) fail('ParameterError', `share ${i}: point out of [1, p)`);
  return { x, y: F.vec(sh.y) };
}
function reconstruct(F, t, k, length, shares) {
  if (!Array.isArray(shares)) fail('ParameterError', 'shares must be a list');
  const read = shares.map((sh, i) => readShare(F, sh, i));
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 1) fail('ParameterError', 'threshold must be an integer >= 1');
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1) fail('ParameterError', 'packing must be an integer >= 1');
  if (2n * BigInt(t + k) > F.p) fail('ParameterError', '2(t + k) > p');
  const d = parseSmall(length, 'length');
  const K = t + k; const p = F.p;
  if (read.length < K) fail('ThresholdNotMet', `need ${K} shares; got ${read.length}`);
  const xs = [];
  for (const { x } of read) {
    if (x >= p - BigInt(K) + 1n) fail('ParameterError', 'point is reserved');
    if (xs.includes(x)) fail('ParameterError', 'duplicate point');
    xs.push(x);
  }
  const ys = read.map((sh) => sh.y);
  const m = ys[0].length;
  if (ys.some((y) => y.length !== m)) fail('ParameterError', 'shares of different lengths');
  if (Math.ceil(d / k) !== m) fail('ParameterError', 'ceil(length / k) != m');
  const base = xs.slice(0, K);
  const basis = (z) => base.map((xi, i) => {
    let num = 1n, den = 1n;
    base.forEach((xl, l) => { if (l !== i) { num = F.mul(num, F.sub(z, xl)); den = F.mul(den, F.sub(xi, xl)); } });
    return F.mul(num, F.inv(den));
  });
  const evalAt = (L, j) => L.reduce((acc, c, b) => F.add(acc, F.mul(c, ys[b][j])), 0n);
  for (let h = K; h < xs.length; h++) {
    const L = basis(xs[h]);
    for (let j = 0; j < m; j++) if (evalAt(L, j) !== ys[h][j]) fail('InconsistentShares', `share at ${xs[h]} disagrees at ${j}`);
  }
  const out = [];
  const rows = []; for (let i = 0; i < k; i++) rows.push(basis(F.mod(-BigInt(i))));
  for (let j = 0; j < m; j++) for (let i = 0; i < k; i++) out.push(evalAt(rows[i], j));
  return out.slice(0, d);
}

// ---------------------------------------------------------------- serve
const str = (vs) => vs.map((v) => v.toString());
function binary(req, f) {
  const F = Field.parse(req.modulus); const a = F.vec(req.a); const b = F.vec(req.b);
  if (a.length !== b.length) fail('ParameterError', 'shapes differ');
  return str(a.map((x, i) => f(F, x, b[i])));
}
const OPS = {
  'field.add': (r) => binary(r, (F, x, y) => F.add(x, y)),
  'field.sub': (r) => binary(r, (F, x, y) => F.sub(x, y)),
  'field.mul': (r) => binary(r, (F, x, y) => F.mul(x, y)),
  'field.inv': (r) => { const F = Field.parse(r.modulus); return str(F.vec(r.a).map((x) => F.inv(x))); },
  'field.encode': (r) => { const F = Field.parse(r.modulus); return F.encode(F.vec(r.a)); },
  'field.decode': (r) => { const F = Field.parse(r.modulus); return str(F.decode(r.data)); },
  'field.signed_decode': (r) => { const F = Field.parse(r.modulus); return str(F.vec(r.a).map((x) => F.signedDecode(x))); },
  'xof.bytes': (r) => new Xof(parseSeed(r.seed), r.tag).nextBytes(parseSmall(r.n, 'n')).toString('hex'),
  'xof.uniform_ints': (r) => {
    const bound = parseDec(r.bound, 'bound', 'ParameterError');
    return str(new Xof(parseSeed(r.seed), r.tag).uniformInts(bound, parseSmall(r.count, 'count')));
  },
  'xof.field_elements': (r) => {
    const F = Field.parse(r.modulus);
    return str(new Xof(parseSeed(r.seed), r.tag).uniformInts(F.p, parseSmall(r.count, 'count')));
  },
  'shamir.reconstruct': (r) => {
    const F = Field.parse(r.modulus);
    return str(reconstruct(F, r.threshold, r.packing, r.length, r.shares));
  },
};
function handle(line) {
  let req;
  try { req = JSON.parse(line); } catch { return { id: null, error: 'InvalidMessage' }; }
  const id = req.id ?? null;
  const op = OPS[req.op];
  if (!op) return { id, unsupported: true };
  try { return { id, result: op(req) }; } catch (e) {
    if (e instanceof SdlError) return { id, error: e.sdlName };
    return { id, error: 'InternalError', message: String(e) };
  }
}
function serve() {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on('line', (line) => { if (line.trim() !== '') process.stdout.write(JSON.stringify(handle(line)) + '\n'); });
}

// ---------------------------------------------------------------- replay
function eq(a, b) { return JSON.stringify(a) === JSON.stringify(b); }
function replayField(v) {
  const F = Field.parse(v.modulus);
  if (v.operation === 'arithmetic') {
    const a = F.vec(v.a); const b = F.vec(v.b); const errs = [];
    const chk = (name, got, want) => { if (!eq(got, want)) errs.push(name); };
    chk('add', str(a.map((x, i) => F.add(x, b[i]))), v.add);
    chk('sub', str(a.map((x, i) => F.sub(x, b[i]))), v.sub);
    chk('mul', str(a.map((x, i) => F.mul(x, b[i]))), v.mul);
    chk('neg_a', str(a.map((x) => F.neg(x))), v.neg_a);
    chk('inv_a', str(a.map((x) => F.inv(x))), v.inv_a);
    chk('encoded_a', F.encode(a), v.encoded_a);
    chk('decode(encoded_a)', str(F.decode(v.encoded_a)), v.a);
    chk('signed_encoded', str(v.signed_values.map((s) => F.signedEncode(parseSigned(s)))), v.signed_encoded);
    chk('signed_decode', str(F.vec(v.signed_encoded).map((x) => F.signedDecode(x))), v.signed_values);
    return errs;
  }
  const run = { decode: () => F.decode(v.input), from_json: () => F.vec(v.input), signed_encode: () => v.input.map((s) => F.signedEncode(parseSigned(s))) }[v.operation];
  if (!run) return null;
  return expectError(run, v.error);
}
function expectError(run, want) {
  try { run(); return [`expected ${want}, got a result`]; } catch (e) {
    if (!(e instanceof SdlError)) throw e;
    // Only leaf classes are used by these vectors; a subclass check would need the hierarchy.
    const parents = { FieldMismatchError: 'ParameterError', ThresholdNotMet: 'RemoteProtocolError', InconsistentShares: 'RemoteProtocolError', InvalidMessage: 'RemoteProtocolError', RemoteProtocolError: 'ProtocolError', LocalProtocolError: 'ProtocolError', ParameterError: 'SdlError', EncodingError: 'SdlError', ProtocolError: 'SdlError' };
    for (let n = e.sdlName; n; n = parents[n]) if (n === want) return [];
    return [`expected ${want}, got ${e.sdlName}`];
  }
}
function replayXof(v) {
  if (v.operation === 'derive_seed') {
    const got = new Xof(parseSeed(v.seed), v.tag).nextBytes(32).toString('hex');
    return got === v.output ? [] : ['derived seed differs'];
  }
  if (v.operation !== 'stream') return null;
  const mk = () => new Xof(parseSeed(v.seed), v.tag);
  if (v.error) return expectError(mk, v.error);
  const errs = [];
  if (v.tag_encoding !== undefined && encodeTag(v.tag).toString('hex') !== v.tag_encoding) errs.push('tag_encoding');
  const x = mk();
  v.operations.forEach((o, i) => {
    let got;
    switch (o.op) {
      case 'next_bytes': got = x.nextBytes(o.n).toString('hex'); break;
      case 'uniform_ints': got = str(x.uniformInts(parseDec(o.bound, 'bound'), o.count)); break;
      case 'field_elements': got = str(x.uniformInts(Field.parse(o.modulus).p, o.count)); break;
      case 'uniform_int': got = x.uniformInt(parseDec(o.bound, 'bound')).toString(); break;
      case 'bernoulli': got = x.bernoulli(parseDec(o.numerator, 'n'), parseDec(o.denominator, 'd')); break;
      default: errs.push(`operations[${i}]: unsupported op ${o.op} (stream cannot continue)`); return;
    }
    if (!eq(got, o.output)) errs.push(`operations[${i}] ${o.op}`);
  });
  return errs;
}
function replayShamir(v) {
  if (v.operation === 'robust_reconstruct' && v.max_errors === 0) {
    const run = () => reconstruct(Field.parse(v.modulus), v.threshold, v.packing, v.length, v.shares);
    if (v.error) return expectError(run, v.error);
    return eq(str(run()), v.secret) ? [] : ['reconstructed secret differs'];
  }
  if (v.operation !== 'share' || v.error || !v.reconstruct_from) return null;
  if (v.degree !== v.threshold + v.packing - 1) return ['degree disagrees with threshold + packing - 1'];
  const F = Field.parse(v.modulus);
  const byX = new Map(v.shares.map((s) => [s.x, s]));
  const chosen = v.reconstruct_from.map((x) => byX.get(x));
  const got = str(reconstruct(F, v.threshold, v.packing, v.length, chosen));
  return eq(got, v.secret) ? [] : ['reconstructed secret differs'];
}
function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p)); else if (name.endsWith('.json')) out.push(p);
  }
  return out;
}
function replay(dir) {
  let failed = 0, passed = 0, skipped = 0;
  for (const file of walk(dir)) {
    let v;
    try { v = JSON.parse(readFileSync(file, 'utf8')); } catch { console.log(`FAIL ${file}: not JSON`); failed++; continue; }
    const fn = { field: replayField, xof: replayXof, shamir: replayShamir }[v.family];
    if (v.format !== 'sdl-vectors/1' || !fn) { console.log(`skip ${file}: family ${v.family} not supported`); skipped++; continue; }
    let errs;
    try { errs = fn(v); } catch (e) { errs = [`raised ${e.sdlName ?? e}`]; }
    if (errs === null) { console.log(`skip ${file}: operation ${v.operation} not supported`); skipped++; }
    else if (errs.length === 0) { console.log(`pass ${file}`); passed++; }
    else { console.log(`FAIL ${file}: ${errs.join('; ')}`); failed++; }
  }
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(failed ? 1 : 0);
}

const [mode, arg] = process.argv.slice(2);
if (mode === 'serve') serve();
else if (mode === 'replay' && arg) replay(arg);
else { process.stderr.write('usage: sdl_consumer.mjs serve | replay DIR\n'); process.exit(2); }
