#!/usr/bin/env python3
"""Checks a speedscope JSON file against the facts of speedscope's published
file-format schema (file-format-schema.json): the $schema constant, shared
frames with a string name and optional file/line/col, sampled profiles with
their required keys, the unit enumeration, samples and weights of equal
length with frame indices in range. Prints nothing and exits 0 when valid."""
import json
import sys

SCHEMA = "https://www.speedscope.app/file-format-schema.json"
UNITS = {"none", "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes"}


def fail(msg):
    print("invalid speedscope file: " + msg)
    sys.exit(1)


def number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def main(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if not isinstance(doc, dict):
        fail("top level is not an object")
    for key in ("$schema", "shared", "profiles"):
        if key not in doc:
            fail("missing required key " + key)
    if doc["$schema"] != SCHEMA:
        fail("$schema is not " + SCHEMA)
    for key, kind in (("name", str), ("exporter", str)):
        if key in doc and not isinstance(doc[key], kind):
            fail(key + " is not a string")
    if "activeProfileIndex" in doc and not number(doc["activeProfileIndex"]):
        fail("activeProfileIndex is not a number")
    frames = doc["shared"].get("frames")
    if not isinstance(frames, list):
        fail("shared.frames is not an array")
    for i, fr in enumerate(frames):
        if not isinstance(fr, dict) or not isinstance(fr.get("name"), str):
            fail("frame %d has no string name" % i)
        if "file" in fr and not isinstance(fr["file"], str):
            fail("frame %d file is not a string" % i)
        for k in ("line", "col"):
            if k in fr and not number(fr[k]):
                fail("frame %d %s is not a number" % (i, k))
    if not isinstance(doc["profiles"], list) or not doc["profiles"]:
        fail("profiles is not a non-empty array")
    for p in doc["profiles"]:
        for key in ("type", "name", "unit", "startValue", "endValue", "samples", "weights"):
            if key not in p:
                fail("profile misses required key " + key)
        if p["type"] != "sampled":
            fail("profile type is not 'sampled'")
        if p["unit"] not in UNITS:
            fail("unit %r is not one of %s" % (p["unit"], sorted(UNITS)))
        if not (number(p["startValue"]) and number(p["endValue"])):
            fail("startValue/endValue are not numbers")
        if len(p["samples"]) != len(p["weights"]):
            fail("samples and weights differ in length")
        for s in p["samples"]:
            if not isinstance(s, list) or not all(isinstance(x, int) and 0 <= x < len(frames) for x in s):
                fail("a sample holds an index outside shared.frames")
        if not all(number(w) for w in p["weights"]):
            fail("a weight is not a number")
        if abs(sum(p["weights"]) - (p["endValue"] - p["startValue"])) > 1e-6:
            fail("weights do not add up to endValue - startValue")


if __name__ == "__main__":
    main(sys.argv[1])
