// report_page.js — the script of `kiln report`'s page (embedded by
// report_assets.c). Reads the JSON that report_data.c writes, rebuilds each
// kind's trie from its packed arrays, and draws every view on canvas or in
// plain DOM: flame graph, icicle, sandwich, top table, call tree, time chart.
// No network, no library: everything it needs is in this file.
"use strict";
(function () {
  var D = JSON.parse(document.getElementById("kiln-data").textContent);
  var NAMES = D.names, NN = NAMES.length;
  var FH = 17, FONT = "12px Verdana, DejaVu Sans, sans-serif";
  var SEARCH_COLOR = "rgb(230,0,230)";

  // ------------------------------------------------------------ names
  // perf's annotations (_[k] kernel, _[j] jit, _[i] inlined, _[w] waker)
  // are stripped from what is shown and searched, and kept for colour.
  var DISPLAY = new Array(NN), SHORT = new Array(NN), KERNEL = new Uint8Array(NN);
  for (var i = 0; i < NN; i++) {
    var nm = NAMES[i];
    var m = /_\[([kwij])\]$/.exec(nm);
    DISPLAY[i] = m ? nm.substring(0, nm.length - 4) : nm;
    KERNEL[i] = (nm === "[kernel]" || (m && m[1] === "k")) ? 1 : 0;
  }
  // pprof's simplified names: parameter lists and template arguments dropped.
  function simplify(s) {
    if (s.charAt(0) === "[") return s;
    var out = "", angle = 0, paren = 0;
    for (var j = 0; j < s.length; j++) {
      var c = s.charAt(j);
      if (s.substr(j, 8) === "operator" && /[<>()]/.test(s.charAt(j + 8))) {
        out += s.substr(j, 10); j += 9; continue;
      }
      if (c === "<") { angle++; continue; }
      if (c === ">" && angle > 0) { angle--; continue; }
      if (c === "(") { paren++; continue; }
      if (c === ")" && paren > 0) { paren--; continue; }
      if (angle === 0 && paren === 0) out += c;
    }
    out = out.replace(/\s+const$/, "").trim();
    return out || s;
  }
  function label(id) {
    if (id < 0) return "all";
    if (S.short) { if (SHORT[id] === undefined) SHORT[id] = simplify(DISPLAY[id]); return SHORT[id]; }
    return DISPLAY[id];
  }
  var RANK = (function () {
    var order = [];
    for (var i = 0; i < NN; i++) order.push(i);
    order.sort(function (a, b) { return NAMES[a] < NAMES[b] ? -1 : NAMES[a] > NAMES[b] ? 1 : 0; });
    var r = new Int32Array(NN);
    order.forEach(function (id, k) { r[id] = k; });
    return r;
  })();

  // ------------------------------------------------------------ colours
  // flamegraph.pl's default: the name's code points summed seed Perl's
  // drand48 (srand(sum); rand(1)), one value for all three channels, so a
  // name has one colour everywhere and hues stay on the red-yellow line.
  function nameValue(s) {
    var sum = 0;
    for (var ch of s) sum = (sum + ch.codePointAt(0)) >>> 0;
    var x = (BigInt(sum) << 16n) | 0x330En;
    x = (x * 0x5DEECE66Dn + 0xBn) & 0xFFFFFFFFFFFFn;
    return Number(x) / 281474976710656;
  }
  var COLOR = new Array(NN);
  function frameColor(id) {
    if (id < 0) return "rgb(240,240,240)";
    var c = COLOR[id];
    if (c) return c;
    var nm = NAMES[id], v = nameValue(nm);
    if (nm === "--") c = "rgb(160,160,160)";
    else if (nm === "-") c = "rgb(200,200,200)";
    else if (KERNEL[id]) c = "rgb(" + (190 + Math.floor(65 * v)) + "," + (90 + Math.floor(65 * v)) + ",0)";
    else if (/^\[kiln: /.test(nm)) c = "rgb(" + (150 + Math.floor(40 * v)) + "," + (150 + Math.floor(40 * v)) + "," + (170 + Math.floor(40 * v)) + ")";
    else if (/_\[j\]$/.test(nm)) c = "rgb(" + (50 + Math.floor(60 * v)) + "," + (200 + Math.floor(55 * v)) + "," + (50 + Math.floor(60 * v)) + ")";
    else if (/_\[i\]$/.test(nm)) c = "rgb(" + (50 + Math.floor(60 * v)) + "," + (165 + Math.floor(55 * v)) + "," + (165 + Math.floor(55 * v)) + ")";
    else c = "rgb(" + (205 + Math.floor(50 * v)) + "," + Math.floor(230 * v) + "," + Math.floor(55 * v) + ")";
    COLOR[id] = c;
    return c;
  }
  // flamegraph.pl's differential scale, of the frame's own change.
  function diffColor(d, max) {
    if (d > 0) { var g = Math.floor(210 * (max - d) / max); return "rgb(255," + g + "," + g + ")"; }
    if (d < 0) { var r = Math.floor(210 * (max + d) / max); return "rgb(" + r + "," + r + ",255)"; }
    return "rgb(255,255,255)";
  }

  // ------------------------------------------------------------ numbers
  function commas(v) {
    if (v !== Math.floor(v)) return v.toFixed(2);
    var s = String(Math.abs(v)), out = "";
    while (s.length > 3) { out = "," + s.substring(s.length - 3) + out; s = s.substring(0, s.length - 3); }
    return (v < 0 ? "-" : "") + s + out;
  }
  function bytes(v) {
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], k = 0, a = Math.abs(v);
    while (a >= 1024 && k < u.length - 1) { a /= 1024; k++; }
    return (v < 0 ? "-" : "") + (k ? a.toFixed(1) : String(a)) + " " + u[k];
  }
  function pct(v, all) { return all > 0 ? (100 * v / all).toFixed(2) + "%" : "0%"; }
  function amount(v, kind) {
    var s = commas(v) + " " + kind.unit;
    if (kind.unit === "bytes" && Math.abs(v) >= 1024) s += " (" + bytes(v) + ")";
    if (kind.kind === "cpu" && PERIOD > 0) s += " (" + ms(v * PERIOD) + ")";
    return s;
  }
  function ms(ns) { return ns >= 1e9 ? (ns / 1e9).toFixed(2) + " s" : (ns / 1e6).toFixed(1) + " ms"; }
  var PERIOD = 0;
  D.procs.forEach(function (p) { if (p.period_ns > 0 && !PERIOD) PERIOD = p.period_ns; });

  // ------------------------------------------------------------ source tries
  // Each kind's nodes come in pre-order: "up" says how many levels to climb
  // from the previous node before this one is added as a child.
  function decode(k) {
    var n = k.up.length, parent = new Int32Array(n), depth = new Int32Array(n), path = [0];
    parent[0] = -1;
    for (var i = 1; i < n; i++) {
      var d = depth[i - 1] + 1 - k.up[i];
      depth[i] = d;
      parent[i] = path[d - 1];
      path[d] = i;
    }
    var rest = new Float64Array(n), rest0 = new Float64Array(n);
    if (k.rest) for (var j = 0; j < k.rest.length; j += 3) { rest[k.rest[j]] = k.rest[j + 1]; rest0[k.rest[j]] = k.rest[j + 2]; }
    k.src = { n: n, parent: parent, depth: depth, name: Int32Array.from(k.name),
              self: Float64Array.from(k.self), self0: k.self0 ? Float64Array.from(k.self0) : null,
              rest: rest, rest0: rest0, where: new Int32Array(n).fill(-1) };
    // The hottest source line of a node (stacks files), as kiln tree says it.
    if (k.where) for (var w = 0; w < k.where.length; w += 2) k.src.where[k.where[w]] = k.where[w + 1];
  }
  D.kinds.forEach(decode);

  // ------------------------------------------------------------ state
  var S = {
    kind: 0, view: "flame", search: "", ic: false, focus: "", ignore: "", hide: "",
    collapse: false, group: D.procs.length > 1, short: false, span: null, sel: -1,
    zoomPath: [], widths: "after", sort: D.diff ? "dself" : "self", sortDesc: true,
    filterText: ""
  };
  var T = null; // the derived tree of the current kind and filters
  var errors = {};

  function compile(key, text) {
    errors[key] = "";
    if (!text) return null;
    try { return new RegExp(text, S.ic ? "i" : ""); }
    catch (e) { errors[key] = "bad regex: " + e.message; return null; }
  }
  function tester(re) {
    if (!re) return null;
    var cache = new Int8Array(NN);
    return function (id) {
      if (id < 0) return false;
      var c = cache[id];
      if (c === 0) { c = re.test(DISPLAY[id]) || (S.short && re.test(label(id))) ? 1 : 2; cache[id] = c; }
      return c === 1;
    };
  }

  // The values of a span of interval sets, or null for the whole run.
  function spanValues(k) {
    if (!S.span || !k.iv) return null;
    var n = k.src.n, self = new Float64Array(n), rest = new Float64Array(n), used = 0;
    var last = {};
    k.iv.forEach(function (iv, j) {
      var set = D.procs[iv.p].sets[iv.s], mid = (set.t0 + set.t1) / 2;
      if (mid < S.span.t0 || mid > S.span.t1) return;
      if (k.additive) add(iv); else if (!(iv.p in last) || k.iv[last[iv.p]].s < iv.s) last[iv.p] = j;
    });
    if (!k.additive) Object.keys(last).forEach(function (p) { add(k.iv[last[p]]); });
    function add(iv) {
      used++;
      for (var c = 0; c < iv.c.length; c += 2) {
        var at = iv.c[c], v = iv.c[c + 1];
        if (at >= 0) self[at] += v; else rest[-at - 1] += v;
      }
    }
    return { self: self, rest: rest, used: used };
  }

  // Filters as pprof has them: focus keeps the stacks through a match,
  // ignore drops them, hide removes the matching frames from the stacks;
  // collapse merges direct recursion; group shows the process level.
  function build() {
    var k = D.kinds[S.kind], s = k.src, n = s.n;
    var fre = tester(compile("focus", S.focus)), ire = tester(compile("ignore", S.ignore));
    var hre = tester(compile("hide", S.hide));
    var span = spanValues(k);
    var self = span ? span.self : s.self, rest = span ? span.rest : s.rest;
    var self0 = span ? null : s.self0, rest0 = span ? null : s.rest0;
    var t = {
      n: 1, parent: new Int32Array(n), name: new Int32Array(n), proc: new Uint8Array(n),
      self: new Float64Array(n), rest: new Float64Array(n), total: new Float64Array(n),
      self0: self0 ? new Float64Array(n) : null, rest0: self0 ? new Float64Array(n) : null,
      total0: self0 ? new Float64Array(n) : null, diff: !!self0, span: span,
      where: new Int32Array(n).fill(-1)
    };
    t.parent[0] = -1; t.name[0] = -1;
    var dn = new Int32Array(n), fh = new Uint8Array(n), ih = new Uint8Array(n), map = new Map();
    for (var i = 0; i < n; i++) {
      var d, nm = s.name[i];
      if (i === 0) { d = 0; }
      else {
        var p = s.parent[i], dp = dn[p], isProc = s.depth[i] === 1;
        fh[i] = fh[p] | (fre && !isProc && fre(nm) ? 1 : 0);
        ih[i] = ih[p] | (ire && !isProc && ire(nm) ? 1 : 0);
        if (isProc && !S.group) d = dp;
        else if (!isProc && hre && hre(nm)) d = dp;
        else if (S.collapse && dp !== 0 && t.name[dp] === nm) d = dp;
        else {
          var key = dp * NN + nm, c = map.get(key);
          if (c === undefined) { c = t.n++; t.parent[c] = dp; t.name[c] = nm; t.proc[c] = isProc ? 1 : 0; map.set(key, c); }
          if (t.where[c] < 0) t.where[c] = s.where[i]; // merged processes: the first one's
          d = c;
        }
      }
      dn[i] = d;
      if ((!fre || fh[i]) && !ih[i]) {
        t.self[d] += self[i]; t.rest[d] += rest[i];
        if (self0) { t.self0[d] += self0[i]; t.rest0[d] += rest0[i]; }
      }
    }
    for (var c2 = 0; c2 < t.n; c2++) {
      t.total[c2] += t.self[c2] + t.rest[c2];
      if (self0) t.total0[c2] += t.self0[c2] + t.rest0[c2];
    }
    for (var c3 = t.n - 1; c3 > 0; c3--) {
      t.total[t.parent[c3]] += t.total[c3];
      if (self0) t.total0[t.parent[c3]] += t.total0[c3];
    }
    // Children, in name order (drawing) — only those with any weight.
    var cnt = new Int32Array(t.n + 1);
    for (var c4 = 1; c4 < t.n; c4++) if (live(t, c4)) cnt[t.parent[c4] + 1]++;
    for (var c5 = 0; c5 < t.n; c5++) cnt[c5 + 1] += cnt[c5];
    var kids = new Int32Array(cnt[t.n]), fill = cnt.slice(0, t.n);
    for (var c6 = 1; c6 < t.n; c6++) if (live(t, c6)) kids[fill[t.parent[c6]]++] = c6;
    for (var c7 = 0; c7 < t.n; c7++) {
      if (cnt[c7 + 1] - cnt[c7] > 1) {
        var sub = Array.from(kids.subarray(cnt[c7], cnt[c7 + 1]));
        sub.sort(function (a, b) { return RANK[t.name[a]] - RANK[t.name[b]]; });
        kids.set(sub, cnt[c7]);
      }
    }
    t.kstart = cnt; t.kids = kids;
    if (self0) {
      var max = 1;
      for (var c8 = 1; c8 < t.n; c8++) max = Math.max(max, Math.abs(t.self[c8] - t.self0[c8]));
      t.maxDelta = max;
    }
    t.kind = k;
    T = t;
    resolveZoom();
  }
  function live(t, c) { return t.total[c] > 0 || (t.total0 && t.total0[c] > 0); }
  function width(t, c) { return t.diff && S.widths === "before" ? t.total0[c] : t.total[c]; }
  function selfWidth(t, c) { return t.diff && S.widths === "before" ? t.self0[c] : t.self[c]; }
  function childrenOf(t, c) { return t.kids.subarray(t.kstart[c], t.kstart[c + 1]); }
  function pathOf(t, c) { var p = []; while (c > 0) { p.unshift(t.name[c]); c = t.parent[c]; } return p; }
  function resolveZoom() {
    var c = 0;
    for (var j = 0; j < S.zoomPath.length; j++) {
      var next = -1, ks = childrenOf(T, c);
      for (var q = 0; q < ks.length; q++) if (T.name[ks[q]] === S.zoomPath[j]) { next = ks[q]; break; }
      if (next < 0) break;
      c = next;
    }
    T.zoom = c;
    S.zoomPath = pathOf(T, c);
  }

  // ------------------------------------------------------------ DOM helpers
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (a) {
      if (a === "text") e.textContent = attrs[a];
      else if (a.substring(0, 2) === "on") e.addEventListener(a.substring(2), attrs[a]);
      else e.setAttribute(a, attrs[a]);
    });
    (kids || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }
  function $(id) { return document.getElementById(id); }

  // ------------------------------------------------------------ flame drawing
  // Frames narrower than half a pixel are not drawn (their parent's width
  // still holds them); the rectangles drawn are kept for hit testing.
  var measureCache = {};
  function fitLabel(ctx, text, w) {
    var full = measureCache[text];
    if (full === undefined) { full = ctx.measureText(text).width; measureCache[text] = full; }
    if (full <= w) return text;
    if (ctx.measureText("W..").width > w) return "";
    var lo = 1, hi = text.length - 1;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (ctx.measureText(text.substring(0, mid) + "..").width <= w) lo = mid; else hi = mid - 1;
    }
    return text.substring(0, lo) + "..";
  }

  function Flame(canvas, opts) {
    this.canvas = canvas; this.opts = opts; this.rects = []; this.hover = -1;
    var self = this;
    canvas.addEventListener("mousemove", function (e) { self.move(e); });
    canvas.addEventListener("mouseleave", function () { self.hover = -1; tip(null); details(null); });
    canvas.addEventListener("click", function (e) { self.click(e); });
  }
  Flame.prototype.draw = function () {
    var t = this.opts.tree(), inverted = this.opts.inverted, zoom = this.opts.zoom();
    var W = Math.max(200, this.canvas.parentNode.clientWidth - 2);
    var rects = [], stack = [], maxDepth = 0, zw = width(t, zoom);
    var anc = [];
    for (var a = t.parent[zoom]; a >= 0; a = t.parent[a]) anc.unshift(a);
    anc.forEach(function (c, d) { rects.push({ c: c, x: 0, w: W, d: d, faded: true }); });
    var zd = anc.length;
    if (zw > 0) stack.push([zoom, 0, zd]);
    var scale = zw > 0 ? W / zw : 0;
    while (stack.length) {
      var it = stack.pop(), c = it[0], x = it[1], d = it[2], w = width(t, c) * scale;
      if (w < 0.5) continue;
      rects.push({ c: c, x: x, w: w, d: d });
      if (d > maxDepth) maxDepth = d;
      var cx = x + selfWidth(t, c) * scale, ks = childrenOf(t, c);
      for (var q = 0; q < ks.length; q++) { stack.push([ks[q], cx, d + 1]); cx += width(t, ks[q]) * scale; }
    }
    if (zd > maxDepth) maxDepth = zd;
    var H = (maxDepth + 1) * FH + 4, dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(W * dpr); this.canvas.height = Math.round(H * dpr);
    this.canvas.style.width = W + "px"; this.canvas.style.height = H + "px";
    var ctx = this.canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    ctx.font = FONT; ctx.textBaseline = "middle";
    var match = searchTester(), sel = S.sel;
    for (var r = 0; r < rects.length; r++) {
      var R = rects[r];
      R.y = inverted ? R.d * FH : H - (R.d + 1) * FH;
      var id = t.name[R.c];
      var fill;
      if (match && match(id)) fill = SEARCH_COLOR;
      else if (t.proc[R.c]) fill = "rgb(180,190,215)";
      else if (t.diff && R.c > 0) {
        if (t.total0[R.c] === 0) fill = "rgb(190,0,0)";
        else if (t.total[R.c] === 0) fill = "rgb(0,0,170)";
        else fill = diffColor(t.self[R.c] - t.self0[R.c], t.maxDelta);
      } else fill = frameColor(id);
      ctx.globalAlpha = R.faded ? 0.5 : 1;
      ctx.fillStyle = fill;
      ctx.fillRect(R.x, R.y, Math.max(R.w - 1, 0.5), FH - 1);
      if (sel >= 0 && id === sel) { ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5; ctx.strokeRect(R.x + 0.75, R.y + 0.75, R.w - 2, FH - 2.5); }
      if (R.w > 21) {
        var txt = fitLabel(ctx, label(id), R.w - 6);
        if (txt) {
          ctx.fillStyle = (t.diff && (t.total0[R.c] === 0 || t.total[R.c] === 0)) || fill === "rgb(0,0,170)" ? "#fff" : "#000";
          ctx.fillText(txt, R.x + 3, R.y + FH / 2);
        }
      }
    }
    ctx.globalAlpha = 1;
    this.rects = rects; this.H = H; this.W = W;
  };
  Flame.prototype.at = function (e) {
    var b = this.canvas.getBoundingClientRect(), x = e.clientX - b.left, y = e.clientY - b.top;
    for (var r = this.rects.length - 1; r >= 0; r--) {
      var R = this.rects[r];
      if (x >= R.x && x < R.x + R.w && y >= R.y && y < R.y + FH) return R;
    }
    return null;
  };
  Flame.prototype.move = function (e) {
    var R = this.at(e), t = this.opts.tree();
    if (!R) { tip(null); details(null); return; }
    var info = frameInfo(t, R.c);
    tip(info, e.clientX, e.clientY);
    details(info);
  };
  Flame.prototype.click = function (e) {
    var R = this.at(e);
    if (!R) return;
    if (e.shiftKey || e.altKey) { select(this.opts.tree().name[R.c]); return; }
    this.opts.onzoom(R.c);
  };

  function frameInfo(t, c) {
    var k = t.kind, all = width(t, 0), name = t.proc[c] ? "process " + NAMES[t.name[c]] : label(t.name[c]);
    var lines = [name];
    if (t.where && t.where[c] >= 0) lines.push("hottest line " + NAMES[t.where[c]]);
    if (t.diff) {
      var d = t.self[c] - t.self0[c];
      lines.push("after " + amount(t.total[c], k) + " (" + pct(t.total[c], t.total[0]) + "), before " +
                 amount(t.total0[c], k) + " (" + pct(t.total0[c], t.total0[0]) + ")");
      lines.push("own change " + (d > 0 ? "+" : "") + commas(d) + " (" + (d > 0 ? "+" : "") +
                 pct(d, t.total[0]) + ")" + (t.total0[c] === 0 ? ", new" : t.total[c] === 0 ? ", vanished" : ""));
    } else {
      var inZoom = false;
      if (t === T && T.zoom > 0) for (var a = c; a >= 0 && !inZoom; a = t.parent[a]) inZoom = a === T.zoom;
      lines.push(amount(t.total[c], k) + ", " + pct(t.total[c], all) + " of all" +
                 (inZoom ? ", " + pct(t.total[c], width(t, T.zoom)) + " of the zoomed frame" : ""));
      if (t.self[c] > 0) lines.push("self " + amount(t.self[c], k) + ", " + pct(t.self[c], all));
      if (t.rest[c] > 0) lines.push("frames too small to keep: " + amount(t.rest[c], k));
    }
    return { name: name, lines: lines, short: lines.slice(1).join("; ") };
  }
  function tip(info, x, y) {
    var tp = $("kiln-tip");
    if (!info) { tp.style.display = "none"; return; }
    tp.textContent = "";
    info.lines.forEach(function (l, j) { tp.appendChild(el("div", { text: l, "class": j ? "" : "tipname" })); });
    tp.style.display = "block";
    var w = tp.offsetWidth, h = tp.offsetHeight;
    tp.style.left = Math.min(x + 12, window.innerWidth - w - 8) + "px";
    tp.style.top = (y + 16 + h > window.innerHeight ? y - h - 8 : y + 16) + "px";
  }
  // The details line: numbers first, so a long C++ name never hides them.
  function details(info) {
    $("kiln-details").textContent = info ? info.short + " \u2014 " + info.name : "\u00a0";
  }

  // ------------------------------------------------------------ search
  function searchTester() {
    if (!S.search) return null;
    try { return tester(new RegExp(S.search, S.ic ? "i" : "")); } catch (e) { return null; }
  }
  // The matched share of the current view: matching frames' widths, a
  // match under a matching frame not counted again, over the zoomed frame.
  function matchedShare(t, zoom) {
    var m = searchTester();
    if (!m) return null;
    for (var a = zoom; a > 0; a = t.parent[a]) if (!t.proc[a] && m(t.name[a])) return 1;
    var sum = 0, stack = [zoom];
    while (stack.length) {
      var c = stack.pop();
      if (c !== zoom && !t.proc[c] && m(t.name[c])) { sum += width(t, c); continue; }
      var ks = childrenOf(t, c);
      for (var q = 0; q < ks.length; q++) stack.push(ks[q]);
    }
    var all = width(t, zoom);
    return all > 0 ? sum / all : 0;
  }
  function showMatched() {
    var out = $("kiln-matched");
    if (!S.search) { out.textContent = ""; out.className = ""; return; }
    try { new RegExp(S.search); } catch (e) { out.textContent = "bad regex: " + e.message; out.className = "err"; return; }
    var tree = S.view === "sandwich" && SW ? SW.callees : T, z = tree === T ? T.zoom : 0;
    var share = matchedShare(tree, z);
    out.className = "";
    out.textContent = "Matched: " + (share === 1 ? "100" : (100 * share).toFixed(1)) + "% of the " + (z > 0 ? "zoomed frame" : "view");
  }

  // ------------------------------------------------------------ sandwich
  // Callers (stacks through the function, reversed, drawn upwards) and
  // callees (its subtrees merged, drawn downwards); a recursive function's
  // outermost call stands for it, so nothing is counted twice.
  var SW = null;
  function mini(n) {
    return { n: 1, parent: new Int32Array(n), name: new Int32Array(n), proc: new Uint8Array(n),
             self: new Float64Array(n), rest: new Float64Array(n), total: new Float64Array(n),
             self0: null, diff: false, map: new Map() };
  }
  function miniChild(m, p, nm) {
    var key = p * NN + nm, c = m.map.get(key);
    if (c === undefined) { c = m.n++; m.parent[c] = p; m.name[c] = nm; m.map.set(key, c); }
    return c;
  }
  function finishMini(m, kind) {
    for (var c = m.n - 1; c >= 0; c--) m.total[c] += m.self[c] + m.rest[c];
    for (var c2 = m.n - 1; c2 > 0; c2--) m.total[m.parent[c2]] += m.total[c2];
    var cnt = new Int32Array(m.n + 1);
    for (var c3 = 1; c3 < m.n; c3++) if (m.total[c3] > 0) cnt[m.parent[c3] + 1]++;
    for (var c4 = 0; c4 < m.n; c4++) cnt[c4 + 1] += cnt[c4];
    var kids = new Int32Array(cnt[m.n]), fill = cnt.slice(0, m.n);
    for (var c5 = 1; c5 < m.n; c5++) if (m.total[c5] > 0) kids[fill[m.parent[c5]]++] = c5;
    for (var c6 = 0; c6 < m.n; c6++) if (cnt[c6 + 1] - cnt[c6] > 1) {
      var sub = Array.from(kids.subarray(cnt[c6], cnt[c6 + 1]));
      sub.sort(function (a, b) { return RANK[m.name[a]] - RANK[m.name[b]]; });
      kids.set(sub, cnt[c6]);
    }
    m.kstart = cnt; m.kids = kids; m.kind = kind; m.zoom = 0;
    return m;
  }
  function buildSandwich(f) {
    var t = T, n = t.n, callees = mini(n + 1), callers = mini(n + 1);
    callees.name[0] = f; callers.name[0] = f;
    callees.parent[0] = -1; callers.parent[0] = -1;
    var map = new Int32Array(n).fill(-1), inF = new Uint8Array(n);
    for (var c = 1; c < n; c++) {
      var p = t.parent[c];
      inF[c] = inF[p];
      if (t.name[c] === f && !t.proc[c] && !inF[p]) {
        inF[c] = 1; map[c] = 0;
        callees.self[0] += t.self[c]; callees.rest[0] += t.rest[c];
        // The callers: this node's path upwards, carrying its total.
        var at = 0;
        for (var a = p; a > 0; a = t.parent[a]) if (!t.proc[a]) at = miniChild(callers, at, t.name[a]);
        callers.self[at] += t.total[c];
        continue;
      }
      if (map[p] >= 0) {
        map[c] = miniChild(callees, map[p], t.name[c]);
        callees.self[map[c]] += t.self[c]; callees.rest[map[c]] += t.rest[c];
      }
    }
    SW = { f: f, callers: finishMini(callers, t.kind), callees: finishMini(callees, t.kind) };
  }

  // ------------------------------------------------------------ top table
  // Per function: self, and total counting a stack once however often the
  // function recurses (kiln top's numbers).
  function topRows(t) {
    var k = t.kind;
    if (k.top && !S.focus && !S.ignore && !S.hide && !S.span && !t.diff && !S.collapse)
      return k.top.map(function (r) { return { id: r[0], self: r[1], total: r[2] }; });
    var self = new Float64Array(NN), total = new Float64Array(NN), self0 = null, total0 = null;
    if (t.diff) { self0 = new Float64Array(NN); total0 = new Float64Array(NN); }
    var onpath = new Int32Array(NN), stack = [0];
    while (stack.length) {
      var e = stack.pop();
      if (e < 0) { onpath[t.name[-e - 1]]--; continue; }
      var isFrame = e > 0 && !t.proc[e], nm = t.name[e];
      if (isFrame) {
        if (onpath[nm]++ === 0) { total[nm] += t.total[e]; if (total0) total0[nm] += t.total0[e]; }
        self[nm] += t.self[e]; if (self0) self0[nm] += t.self0[e];
        stack.push(-e - 1);
      }
      var ks = childrenOf(t, e);
      for (var q = 0; q < ks.length; q++) stack.push(ks[q]);
    }
    var rows = [];
    for (var id = 0; id < NN; id++) {
      if (total[id] > 0 || self[id] > 0 || (total0 && total0[id] > 0))
        rows.push({ id: id, self: self[id], total: total[id], self0: self0 ? self0[id] : 0, total0: total0 ? total0[id] : 0 });
    }
    return rows;
  }
  function sortRows(rows) {
    var key = S.sort, dir = S.sortDesc ? -1 : 1;
    function v(r) {
      if (key === "name") return 0;
      if (key === "dself") return Math.abs(r.self - r.self0);
      if (key === "dtotal") return Math.abs(r.total - r.total0);
      return r[key];
    }
    rows.sort(function (a, b) {
      if (key === "name") return dir * (label(a.id) < label(b.id) ? -1 : label(a.id) > label(b.id) ? 1 : 0);
      var x = v(a), y = v(b);
      if (x !== y) return dir * (x - y);
      if (a.total !== b.total) return b.total - a.total;
      return NAMES[a.id] < NAMES[b.id] ? -1 : NAMES[a.id] > NAMES[b.id] ? 1 : 0;
    });
    return rows;
  }
  function drawTop(box) {
    var t = T, all = t.total[0], all0 = t.diff ? t.total0[0] : 0, k = t.kind;
    var rows = sortRows(topRows(t)), re = null, f = S.filterText;
    if (f) { try { re = new RegExp(f, "i"); } catch (e) { re = null; } }
    var shown = rows.filter(function (r) {
      return !f || (re ? re.test(label(r.id)) : label(r.id).toLowerCase().indexOf(f.toLowerCase()) >= 0);
    });
    var cols = t.diff
      ? [["self0", "self before"], ["self", "self after"], ["dself", "\u0394 self"], ["total0", "total before"], ["total", "total after"], ["dtotal", "\u0394 total"], ["name", "function"]]
      : [["self", "self"], ["selfp", "self%"], ["total", "total"], ["totalp", "total%"], ["name", "function"]];
    var head = el("tr", null, cols.map(function (c) {
      var key = c[0] === "selfp" ? "self" : c[0] === "totalp" ? "total" : c[0];
      return el("th", { text: c[1] + (S.sort === key && c[0] === key ? (S.sortDesc ? " \u25be" : " \u25b4") : ""), "data-sort": key,
        onclick: function () { if (S.sort === key) S.sortDesc = !S.sortDesc; else { S.sort = key; S.sortDesc = key !== "name"; } render(); } });
    }));
    var body = el("tbody");
    shown.slice(0, 500).forEach(function (r) {
      var cells;
      if (t.diff) {
        var ds = r.self - r.self0, dt = r.total - r.total0;
        cells = [commas(r.self0), commas(r.self), (ds > 0 ? "+" : "") + commas(ds), commas(r.total0), commas(r.total), (dt > 0 ? "+" : "") + commas(dt)];
      } else {
        cells = [commas(r.self), pct(r.self, all), commas(r.total), pct(r.total, all)];
      }
      var tr = el("tr", { "class": r.id === S.sel ? "sel" : "", onclick: function () { select(r.id); } },
        cells.map(function (c) { return el("td", { text: c, "class": "num" }); }).concat([el("td", { text: label(r.id), "class": "fn", title: DISPLAY[r.id] })]));
      body.appendChild(tr);
    });
    box.appendChild(el("div", { "class": "tophead" }, [
      el("input", { id: "kiln-topfilter", type: "search", placeholder: "filter functions (text or regex)", value: S.filterText,
        oninput: function (e) { S.filterText = e.target.value; var pos = e.target.selectionStart; render(); var i2 = $("kiln-topfilter"); i2.focus(); i2.setSelectionRange(pos, pos); } }),
      el("span", { id: "kiln-topcount", text: shown.length + " of " + rows.length + " functions; total " +
        amount(all, k) + (t.diff ? " (before " + commas(all0) + ")" : "") })
    ]));
    box.appendChild(el("table", { id: "kiln-top", "class": "top" }, [el("thead", null, [head]), body]));
    if (shown.length > 500) box.appendChild(el("p", { text: (shown.length - 500) + " more rows: refine the filter" }));
  }

  // ------------------------------------------------------------ call tree
  var open = {};
  function drawTree(box) {
    var t = T, all = t.total[0];
    var ul = el("div", { id: "kiln-tree", "class": "tree" });
    function byWeight(c) {
      return Array.from(childrenOf(t, c)).sort(function (a, b) {
        return t.total[b] - t.total[a] || RANK[t.name[a]] - RANK[t.name[b]];
      });
    }
    function key(c) { return pathOf(t, c).join(","); }
    if (!("" in open)) {
      // First view: the heavy paths open, as far as they stay above 10%.
      var stack = [0];
      while (stack.length) {
        var c = stack.pop();
        open[key(c)] = true;
        byWeight(c).forEach(function (k) { if (t.total[k] >= 0.1 * all && pathOf(t, k).length < 12) stack.push(k); });
      }
    }
    function row(c, depth) {
      var ks = byWeight(c), k0 = key(c), isOpen = !!open[k0];
      var text = "[" + (100 * t.total[c] / all).toFixed(1) + "%] " + (c === 0 ? "all" : t.proc[c] ? NAMES[t.name[c]] : label(t.name[c]));
      if (t.where && t.where[c] >= 0) text += "  at " + NAMES[t.where[c]];
      if (c === 0) text += "  (" + commas(all) + ")";
      if (t.self[c] > 0 && ks.length) text += "  (self " + (100 * t.self[c] / all).toFixed(1) + "%)";
      if (t.diff) { var d = t.total[c] - t.total0[c]; text += "  \u0394 " + (d > 0 ? "+" : "") + commas(d); }
      var r = el("div", { "class": "trow", style: "padding-left:" + (depth * 16) + "px", "data-depth": depth,
        onclick: function () { if (ks.length) { open[k0] = !isOpen; render(); } } },
        [el("span", { "class": "tog", text: ks.length ? (isOpen ? "\u25be " : "\u25b8 ") : "  " }), el("span", { text: text })]);
      ul.appendChild(r);
      if (isOpen) ks.forEach(function (k) { row(k, depth + 1); });
    }
    row(0, 0);
    box.appendChild(ul);
  }

  // ------------------------------------------------------------ time chart
  // CPU per interval (bars) and live heap (line), per process; a drag
  // selects a span, whose intervals then make every view.
  var timeDrag = null;
  window.addEventListener("mouseup", function (e) {
    if (!timeDrag) return;
    var cv = $("kiln-time"), d = timeDrag;
    timeDrag = null;
    if (!cv) return;
    var up = e.clientX - cv.getBoundingClientRect().left, a = Math.min(d.x, up), b = Math.max(d.x, up);
    if (b - a < 3) {
      // A click: the interval under the pointer.
      var at = d.T2(a), hit = null;
      D.procs.forEach(function (p) { (p.sets || []).forEach(function (s) { if (at >= s.t0 && at <= s.t1) hit = s; }); });
      if (!hit) return;
      S.span = { t0: hit.t0, t1: hit.t1 };
    } else {
      S.span = { t0: d.T2(a), t1: d.T2(b) };
    }
    rebuild();
  });
  function hasTime() { return D.procs.some(function (p) { return p.sets && p.sets.length > 0; }); }
  function setSamples() {
    var cpu = D.kinds.filter(function (k) { return k.kind === "cpu" && k.iv; })[0], out = {};
    if (cpu) cpu.iv.forEach(function (iv) {
      var s = 0;
      for (var c = 1; c < iv.c.length; c += 2) s += iv.c[c];
      out[iv.p + "/" + iv.s] = s;
    });
    return out;
  }
  function drawTime(box) {
    var W = Math.max(300, box.clientWidth - 2), H = 140, pad = 34;
    var cv = el("canvas", { id: "kiln-time" });
    box.appendChild(cv);
    var dpr = window.devicePixelRatio || 1;
    cv.width = W * dpr; cv.height = H * dpr; cv.style.width = W + "px"; cv.style.height = H + "px";
    var ctx = cv.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    var t0 = Infinity, t1 = -Infinity, maxS = 1, maxL = 1, samples = setSamples();
    D.procs.forEach(function (p, pi) {
      (p.sets || []).forEach(function (s, si) {
        t0 = Math.min(t0, s.t0); t1 = Math.max(t1, s.t1);
        var n = samples[pi + "/" + si]; if (n === undefined) n = Math.max(0, s.samples);
        s.cpu = n; maxS = Math.max(maxS, n); maxL = Math.max(maxL, s.live);
      });
    });
    if (!(t1 > t0)) t1 = t0 + 1;
    function X(t) { return pad + (t - t0) / (t1 - t0) * (W - 2 * pad); }
    function T2(x) { return t0 + (x - pad) / (W - 2 * pad) * (t1 - t0); }
    ctx.font = "11px sans-serif"; ctx.fillStyle = "#333";
    ctx.fillText("CPU samples per interval (bars, max " + commas(maxS) + ")  \u00b7  live heap (line, max " + bytes(maxL) + ")", pad, 12);
    var base = H - 18, top = 20;
    ctx.strokeStyle = "#999"; ctx.beginPath(); ctx.moveTo(pad, base + 0.5); ctx.lineTo(W - pad, base + 0.5); ctx.stroke();
    if (S.span) {
      ctx.fillStyle = "rgba(80,120,255,0.15)";
      ctx.fillRect(X(S.span.t0), top, X(S.span.t1) - X(S.span.t0), base - top);
    }
    var hue = ["rgb(230,120,30)", "rgb(200,60,60)", "rgb(160,100,200)", "rgb(60,150,90)"];
    D.procs.forEach(function (p, pi) {
      ctx.fillStyle = hue[pi % hue.length];
      (p.sets || []).forEach(function (s) {
        var h = (base - top) * s.cpu / maxS;
        ctx.fillRect(X(s.t0) + 1, base - h, Math.max(1, X(s.t1) - X(s.t0) - 2), h);
      });
      ctx.strokeStyle = "rgb(40,90,200)"; ctx.lineWidth = 2; ctx.beginPath();
      (p.sets || []).forEach(function (s, si) {
        if (s.live < 0) return;
        var y = base - (base - top) * s.live / maxL;
        if (si === 0) ctx.moveTo(X(s.t1), y); else ctx.lineTo(X(s.t1), y);
      });
      ctx.stroke();
    });
    ctx.fillStyle = "#333";
    ctx.fillText("0 s", pad, H - 4);
    ctx.fillText((t1 - t0).toFixed(1) + " s", W - pad - 30, H - 4);
    // The drag is kept outside the canvas: a redraw may replace it mid-drag.
    cv.addEventListener("mousedown", function (e) { timeDrag = { x: e.clientX - cv.getBoundingClientRect().left, T2: T2 }; });
    var note = "";
    if (S.span) {
      var k = D.kinds[S.kind];
      note = "span " + (S.span.t0 - t0).toFixed(2) + " s \u2013 " + (S.span.t1 - t0).toFixed(2) + " s: " +
        (k.iv ? (T.span ? T.span.used + " interval set" + (T.span.used === 1 ? "" : "s") + " shown" : "") : "this kind has no interval sets; the whole run is shown");
    } else note = "drag across the chart (or click an interval) to see that span's profile";
    box.appendChild(el("div", { "class": "timenote" }, [el("span", { id: "kiln-spannote", text: note }),
      S.span ? el("button", { id: "kiln-clearspan", text: "whole run", onclick: function () { S.span = null; rebuild(); } }) : null]));
  }

  // ------------------------------------------------------------ page
  function select(id) { S.sel = id; S.view = "sandwich"; rebuild(); }
  function rebuild() { build(); if (S.view === "sandwich" && S.sel >= 0) buildSandwich(S.sel); render(); }

  var flame = null, swTop = null, swBottom = null;
  function render() {
    var k = D.kinds[S.kind];
    // kinds
    var kinds = $("kiln-kinds");
    kinds.textContent = "";
    D.kinds.forEach(function (kk, j) {
      var txt = kk.label + ": " + commas(kk.total) + " " + kk.unit;
      if (kk.kind === "cpu" && kk.kernel > 0) txt += " (kernel " + (100 * kk.kernel).toFixed(1) + "%)";
      if (D.diff) txt = kk.label + ": " + commas(kk.total0 || 0) + " \u2192 " + commas(kk.total) + " " + kk.unit;
      kinds.appendChild(el("button", { text: txt, "class": j === S.kind ? "on" : "", "data-kind": kk.kind,
        onclick: function () { S.kind = j; S.zoomPath = []; S.sel = -1; open = {}; rebuild(); } }));
    });
    // views
    var views = $("kiln-views");
    views.textContent = "";
    [["flame", "Flame graph"], ["icicle", "Icicle"], ["sandwich", "Sandwich"], ["top", "Top"], ["tree", "Call tree"]]
      .concat(D.leaks ? [["leaks", "Leak report"]] : []).forEach(function (v) {
        views.appendChild(el("button", { text: v[1], "class": S.view === v[0] ? "on" : "", "data-view": v[0],
          onclick: function () { S.view = v[0]; if (v[0] === "sandwich" && S.sel < 0) S.sel = heaviestSelf(); rebuild(); } }));
      });
    ["focus", "ignore", "hide"].forEach(function (f) {
      $("kiln-err-" + f).textContent = errors[f] || "";
    });
    // findings
    var fb = $("kiln-findings");
    fb.textContent = "";
    if (k.findings && k.findings.length) {
      fb.appendChild(el("div", { "class": "fhead", text: "What stands out (kiln explain), " + k.label + (D.diff ? ", after" : "") + ":" }));
      var nshow = S.allFindings ? k.findings.length : Math.min(4, k.findings.length);
      k.findings.slice(0, nshow).forEach(function (f) {
        fb.appendChild(el("div", { "class": "finding" }, [
          el("span", { "class": "share", text: (100 * f.share).toFixed(1) + "%" }),
          el("span", { "class": "ftitle", text: f.title }),
          f.where ? el("span", { "class": "where", text: " \u2014 " + f.where }) : null,
          el("div", { "class": "advice", text: "fix: " + f.advice }),
          f.frame ? el("a", { href: "#", text: "search", onclick: function (e) { e.preventDefault(); setSearch("^" + f.frame.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "$"); } }) : null
        ]));
      });
      if (k.findings.length > 4)
        fb.appendChild(el("a", { href: "#", id: "kiln-morefindings", text: S.allFindings ? "fewer" : "all " + k.findings.length + " findings",
          onclick: function (e) { e.preventDefault(); S.allFindings = !S.allFindings; render(); } }));
    }
    // time
    var tb = $("kiln-timebox");
    tb.textContent = "";
    if (hasTime()) drawTime(tb);
    // status
    var st = [];
    if (D.diff) st.push("before: " + D.before + ", after: " + D.after + " \u2014 widths from " + S.widths + ", colour by each frame's own change (red grew, blue shrank; dark red new, dark blue vanished)");
    if (k.pruned) st.push(commas(k.nodes - k.kept) + " of " + commas(k.nodes) + " frames were too small to keep; their counts stay in their parents (the top table is exact)");
    if (T.span && !D.diff) st.push("showing a span of " + T.span.used + " interval set(s)");
    $("kiln-status").textContent = st.join(" \u00b7 ");
    // main
    var main = $("kiln-main");
    main.textContent = "";
    $("kiln-zoomreset").style.visibility = T.zoom > 0 && (S.view === "flame" || S.view === "icicle") ? "visible" : "hidden";
    if (!(T.total[0] > 0) && !(T.total0 && T.total0[0] > 0) && S.view !== "leaks") {
      main.appendChild(el("p", { id: "kiln-empty", text: "Nothing left to show: the filters (or the span) leave no stack of this kind." }));
    } else if (S.view === "flame" || S.view === "icicle") {
      var cv = el("canvas", { id: "kiln-flame" });
      main.appendChild(el("div", { "class": "cvbox" }, [cv]));
      flame = new Flame(cv, { tree: function () { return T; }, zoom: function () { return T.zoom; }, inverted: S.view === "icicle",
        onzoom: function (c) { T.zoom = c; S.zoomPath = pathOf(T, c); render(); } });
      flame.draw();
    } else if (S.view === "sandwich") {
      if (S.sel < 0) S.sel = heaviestSelf();
      if (!SW || SW.f !== S.sel) buildSandwich(S.sel);
      main.appendChild(el("div", { "class": "swhead", text: "Callers of " + label(S.sel) + " (above) and its callees (below): " +
        amount(SW.callees.total[0], k) + ", " + pct(SW.callees.total[0], T.total[0]) + " of all. Shift-click a frame, or a row of the top table, to choose another function." }));
      var c1 = el("canvas", { id: "kiln-callers" }), c2 = el("canvas", { id: "kiln-callees" });
      main.appendChild(el("div", { "class": "cvbox" }, [c1]));
      main.appendChild(el("div", { "class": "cvbox" }, [c2]));
      swTop = new Flame(c1, { tree: function () { return SW.callers; }, zoom: function () { return SW.callers.zoom; }, inverted: false,
        onzoom: function (c) { SW.callers.zoom = c; swTop.draw(); } });
      swBottom = new Flame(c2, { tree: function () { return SW.callees; }, zoom: function () { return SW.callees.zoom; }, inverted: true,
        onzoom: function (c) { SW.callees.zoom = c; swBottom.draw(); } });
      swTop.draw(); swBottom.draw();
    } else if (S.view === "top") {
      drawTop(main);
    } else if (S.view === "tree") {
      drawTree(main);
    } else if (S.view === "leaks") {
      main.appendChild(el("pre", { id: "kiln-leaks", text: D.leaks }));
    }
    showMatched();
    saveHash();
    window.kilnReport.renders++;
  }
  function heaviestSelf() {
    var best = -1, bv = -1;
    for (var c = 1; c < T.n; c++) if (!T.proc[c] && T.self[c] > bv) { bv = T.self[c]; best = T.name[c]; }
    return best;
  }
  function setSearch(term) { S.search = term; $("kiln-search").value = term; render(); }

  // State in the URL fragment, as pprof keeps it: kind, view, search,
  // filters, toggles and the zoomed frame (its path of names) survive a
  // reload and can be shared.
  var HASH_TEXT = { s: "search", f: "focus", i: "ignore", h: "hide" };
  var HASH_FLAG = { rc: "collapse", gp: "group", sn: "short", ic: "ic" };
  function saveHash() {
    var parts = ["kind=" + encodeURIComponent(D.kinds[S.kind].kind), "view=" + S.view];
    Object.keys(HASH_TEXT).forEach(function (k) { if (S[HASH_TEXT[k]]) parts.push(k + "=" + encodeURIComponent(S[HASH_TEXT[k]])); });
    Object.keys(HASH_FLAG).forEach(function (k) { parts.push(k + "=" + (S[HASH_FLAG[k]] ? 1 : 0)); });
    if (S.zoomPath.length) parts.push("z=" + encodeURIComponent(JSON.stringify(S.zoomPath.map(function (id) { return NAMES[id]; }))));
    try { history.replaceState(null, "", "#" + parts.join("&")); } catch (e) { /* file: URLs may refuse */ }
  }
  function loadHash() {
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var i = kv.indexOf("="), key = kv.substring(0, i), v;
      if (i < 0) return;
      try { v = decodeURIComponent(kv.substring(i + 1)); } catch (e) { return; }
      if (key === "kind") D.kinds.forEach(function (k, j) { if (k.kind === v) S.kind = j; });
      else if (key === "view" && /^(flame|icicle|sandwich|top|tree|leaks)$/.test(v)) S.view = v;
      else if (key in HASH_TEXT) S[HASH_TEXT[key]] = v;
      else if (key in HASH_FLAG) S[HASH_FLAG[key]] = v === "1";
      else if (key === "z") {
        try {
          var byName = new Map();
          NAMES.forEach(function (n, id) { byName.set(n, id); });
          S.zoomPath = JSON.parse(v).map(function (n) { return byName.has(n) ? byName.get(n) : -2; })
            .filter(function (id) { return id >= 0; });
        } catch (e) { S.zoomPath = []; }
      }
    });
  }

  function input(id, ph, key) {
    return el("label", null, [el("span", { text: key + " " }),
      el("input", { id: "kiln-" + key, type: "text", placeholder: ph, value: S[key],
        onchange: function (e) { S[key] = e.target.value; rebuild(); } }),
      el("span", { id: "kiln-err-" + key, "class": "err" })]);
  }
  function check(key, text) {
    return el("label", null, [el("input", { id: "kiln-" + key, type: "checkbox",
      onchange: function (e) { S[key] = e.target.checked; rebuild(); } }), el("span", { text: " " + text })]);
  }

  function page() {
    var app = $("app");
    app.appendChild(el("header", null, [
      el("h1", { text: D.title }),
      el("div", { id: "kiln-kinds", "class": "bar" }),
      el("div", { id: "kiln-findings" }),
      el("div", { id: "kiln-timebox" }),
      el("div", { "class": "bar" }, [el("span", { id: "kiln-views" }),
        el("button", { id: "kiln-zoomreset", text: "Reset zoom", onclick: function () { S.zoomPath = []; T.zoom = 0; render(); } }),
        el("span", { "class": "search" }, [
          el("input", { id: "kiln-search", type: "search", placeholder: "search (regex), Ctrl-F", value: S.search,
            onchange: function (e) { S.search = e.target.value; render(); } }),
          el("label", null, [el("input", { id: "kiln-ic", type: "checkbox", onchange: function (e) { S.ic = e.target.checked; rebuild(); } }), el("span", { text: " ic" })]),
          el("span", { id: "kiln-matched" })])]),
      el("div", { "class": "bar filters" }, [
        input("focus", "regex: keep stacks through it", "focus"),
        input("ignore", "regex: drop stacks through it", "ignore"),
        input("hide", "regex: remove the frames", "hide"),
        check("collapse", "collapse recursion"),
        check("group", "group by process"),
        check("short", "short names"),
        D.diff ? el("label", null, [el("input", { id: "kiln-before", type: "checkbox",
          onchange: function (e) { S.widths = e.target.checked ? "before" : "after"; render(); } }), el("span", { text: " widths from before" })]) : null]),
      el("div", { id: "kiln-status" })]));
    app.appendChild(el("main", { id: "kiln-main" }));
    app.appendChild(el("div", { id: "kiln-details", text: "\u00a0" }));
    app.appendChild(el("div", { id: "kiln-tip" }));
    ["group", "collapse", "short", "ic"].forEach(function (k) { $("kiln-" + k).checked = S[k]; });
    window.addEventListener("keydown", function (e) {
      if ((e.ctrlKey || e.metaKey) && e.keyCode === 70) { e.preventDefault(); $("kiln-search").focus(); $("kiln-search").select(); }
      else if (e.key === "Escape") { S.zoomPath = []; if (T) T.zoom = 0; setSearch(""); }
    });
    var resize = null;
    window.addEventListener("resize", function () { clearTimeout(resize); resize = setTimeout(render, 100); });
  }

  window.kilnReport = {
    data: D, state: S, renders: 0,
    tree: function () { return T; }, sandwich: function () { return SW; },
    flame: function () { return flame; }, callers: function () { return swTop; }, callees: function () { return swBottom; },
    label: label, names: NAMES, matchedShare: function () { return matchedShare(T, T.zoom); },
    topRows: function () { return sortRows(topRows(T)); }, rebuild: rebuild, render: render
  };
  loadHash();
  page();
  $("kiln-search").value = S.search;
  build();
  render();
  window.kilnReport.ready = true;
})();
