// The node entry of the real-program suite: JavaScript run by V8's JIT,
// with the C++ underneath it allocating (JSON, strings, zlib, Buffers).
// Deterministic output; about 4 CPU-seconds unprofiled on the CI machine.
'use strict';
const zlib = require('zlib');

function mix(n) {
  let h = 2166136261;
  for (let i = 0; i < n; i++) {
    h ^= i & 0xff;
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h;
}

let out = [];
let total = 0;
for (let round = 0; round < 200; round++) {
  total = (total + mix(2000000)) >>> 0;
  const rows = [];
  for (let i = 0; i < 4000; i++) rows.push({ id: i, name: 'row' + i + '-' + round, tags: [i % 7, i % 11] });
  const text = JSON.stringify(rows);
  const back = JSON.parse(text);
  const packed = zlib.deflateSync(Buffer.from(text));
  const unpacked = zlib.inflateSync(packed).toString();
  if (unpacked !== text || back.length !== rows.length) throw new Error('round trip');
  out.push(packed.length);
}
console.log(total, out.slice(0, 5).join(','), out.length);
