#!/usr/bin/env python3
"""Prints a value of the JSON inside a kiln report page, for the shell
tests. usage: report_json.py PAGE EXPR (EXPR in Python over `d`, the data)."""
import json
import sys

page = open(sys.argv[1], encoding="utf-8").read()
start = page.index('<script type="application/json" id="kiln-data">') + 47
d = json.loads(page[start:page.index("</script>", start)])
v = eval(sys.argv[2], {"d": d})
print(json.dumps(v) if not isinstance(v, str) else v)
