import json, re, hashlib
words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
acc = 0
pat = re.compile(r"(\w+)-(\d+)")
for i in range(400000):
    rec = {"id": i, "name": words[i % 8] + "-" + str(i * 7919 % 10007), "tags": words[: i % 8]}
    s = json.dumps(rec, sort_keys=True)
    back = json.loads(s)
    m = pat.search(back["name"])
    acc = (acc + int(m.group(2)) + len(back["tags"])) % 1000003
    if i % 1000 == 0:
        acc ^= int(hashlib.sha256(s.encode()).hexdigest()[:8], 16) % 65536
d = {}
for i in range(1000000):
    d[str(i % 5000)] = d.get(str(i % 5000), 0) + i
print(acc, sum(d.values()) % 999983, sorted(d)[:3])
