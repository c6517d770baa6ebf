#!/usr/bin/env python3
"""Writes vectors.tsv: JSON input, then what Python's json.dumps prints for it
with Rasa's settings (defaults) and in parley's compact format. Run from this
directory: python3 gen_vectors.py > vectors.tsv"""
import json
import random
import struct

cases = [
    '0', '-0', '1', '-1', '1.0', '-1.0', '0.0', '-0.0', '1e5', '1E5', '1e-5',
    '1e+16', '1e16', '1e15', '123456789012345678', '123456789012345678.0',
    '1e-4', '0.0001', '0.00001', '1.5e300', '5e-324', '1.7976931348623157e308',
    '2.5', '100.0', '1000000.0', '0.1', '0.30000000000000004', '1700000000.123456',
    '99999999999999999999999999999999999999999',
    '-99999999999999999999999999999999999999999', '1.23e-7', '12345.6789e3',
    '"plain"', '"quote \\" backslash \\\\ slash \\/"', '"\\b\\f\\n\\r\\t"',
    '"\\u0000\\u001f\\u007f\\u0080"', '"Grüße 你好 😀"', '"\\ud83d\\ude00"',
    '"\\ud800"', '"\\udc00x"', '"\\ud83dx\\ude00"', '"\u2028\u2029"',
    '"<html>&amp;"', '"\\u00e9"', '"e\u0301"',
    '[]', '{}', '[1,2.0,"x",null,true,false]', '{"b":1,"a":2}',
    '{"a":1,"b":2,"a":3}', '{"nested":{"deep":[{"x":[1,{"y":null}]}]}}',
    '{"":""}', ' { "spaced" : [ 1 , 2 ] } ',
]
rnd = random.Random(42)
for _ in range(300):
    bits = rnd.getrandbits(64)
    f = struct.unpack('<d', struct.pack('<Q', bits))[0]
    if f != f or f in (float('inf'), float('-inf')):
        continue
    cases.append(repr(f))
for _ in range(100):
    cases.append(repr(rnd.uniform(-1e6, 1e6)))
    cases.append(repr(rnd.uniform(0, 1e-3)))
    cases.append(repr(float(rnd.randint(0, 10**18))))

for c in cases:
    v = json.loads(c)
    rasa = json.dumps(v)
    compact = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    # Each column JSON-encoded (ASCII) so tabs and newlines cannot break the file.
    print("\t".join(json.dumps(x) for x in (c, rasa, compact)))
