/* kiln_ehframe.c — function bounds from an ELF image's unwind tables, for
 * code that has no symbol (stripped files): .eh_frame_hdr is a table of
 * (function start, FDE) pairs sorted by start, so a binary search finds
 * the FDE that may hold an address, and the FDE's header (with the little
 * of its CIE that says how the header is encoded) gives the function's
 * extent. Nothing else of DWARF is read. The image is a file mapped
 * read-only (or the vDSO in memory); every read is bounds-checked, so a
 * truncated or hostile file gives "no bounds", never a crash. Dump time,
 * normal context; no state of its own. */
#include "kiln_internal.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

enum {
  KILN_EH_OMIT = 0xff,
  KILN_EH_ABSPTR = 0x00,
  KILN_EH_ULEB128 = 0x01,
  KILN_EH_UDATA2 = 0x02,
  KILN_EH_UDATA4 = 0x03,
  KILN_EH_UDATA8 = 0x04,
  KILN_EH_SLEB128 = 0x09,
  KILN_EH_SDATA2 = 0x0a,
  KILN_EH_SDATA4 = 0x0b,
  KILN_EH_SDATA8 = 0x0c,
  KILN_EH_PCREL = 0x10,
  KILN_EH_DATAREL = 0x30,
};

/* A read cursor over the image: p .. end, with vaddr the link-time address
 * of p (for pc-relative encodings). */
typedef struct kiln_eh_cursor {
  const uint8_t *p, *end;
  uint64_t vaddr;
} kiln_eh_cursor_t;

static bool kiln_ehframe_take(kiln_eh_cursor_t *c, void *out, size_t n) {
  if ((size_t)(c->end - c->p) < n) return false;
  memcpy(out, c->p, n);
  c->p += n;
  c->vaddr += n;
  return true;
}

static bool kiln_ehframe_uleb(kiln_eh_cursor_t *c, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; c->p < c->end && shift < 64; shift += 7) {
    uint8_t b = *c->p++;
    c->vaddr++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

static bool kiln_ehframe_sleb(kiln_eh_cursor_t *c, int64_t *out) {
  uint64_t v = 0;
  unsigned shift = 0;
  while (c->p < c->end && shift < 64) {
    uint8_t b = *c->p++;
    c->vaddr++;
    v |= (uint64_t)(b & 0x7f) << shift;
    shift += 7;
    if (!(b & 0x80)) {
      if (shift < 64 && (b & 0x40)) v |= ~0ull << shift;
      *out = (int64_t)v;
      return true;
    }
  }
  return false;
}

/* Reads one value in encoding enc; data is the base of datarel values.
 * Indirect and text/func-relative encodings are refused (never used for
 * these fields by the toolchains kiln meets). */
static bool kiln_ehframe_read(kiln_eh_cursor_t *c, unsigned enc, uint64_t data, uint64_t *out) {
  if (enc == KILN_EH_OMIT || (enc & 0x80)) return false;
  uint64_t field = c->vaddr, v = 0;
  switch (enc & 0x0f) {
  case KILN_EH_ABSPTR:
  case KILN_EH_UDATA8:
  case KILN_EH_SDATA8: {
    uint64_t x;
    if (!kiln_ehframe_take(c, &x, 8)) return false;
    v = x;
    break;
  }
  case KILN_EH_UDATA4: {
    uint32_t x;
    if (!kiln_ehframe_take(c, &x, 4)) return false;
    v = x;
    break;
  }
  case KILN_EH_SDATA4: {
    int32_t x;
    if (!kiln_ehframe_take(c, &x, 4)) return false;
    v = (uint64_t)(int64_t)x;
    break;
  }
  case KILN_EH_UDATA2: {
    uint16_t x;
    if (!kiln_ehframe_take(c, &x, 2)) return false;
    v = x;
    break;
  }
  case KILN_EH_SDATA2: {
    int16_t x;
    if (!kiln_ehframe_take(c, &x, 2)) return false;
    v = (uint64_t)(int64_t)x;
    break;
  }
  case KILN_EH_ULEB128:
    if (!kiln_ehframe_uleb(c, &v)) return false;
    break;
  case KILN_EH_SLEB128: {
    int64_t x;
    if (!kiln_ehframe_sleb(c, &x)) return false;
    v = (uint64_t)x;
    break;
  }
  default:
    return false;
  }
  switch (enc & 0x70) {
  case 0: break;
  case KILN_EH_PCREL: v += field; break;
  case KILN_EH_DATAREL: v += data; break;
  default: return false;
  }
  *out = v;
  return true;
}

/* Size in bytes of a fixed-size encoding, 0 for the variable ones. */
static size_t kiln_ehframe_fixed_size(unsigned enc) {
  switch (enc & 0x0f) {
  case KILN_EH_UDATA2: case KILN_EH_SDATA2: return 2;
  case KILN_EH_UDATA4: case KILN_EH_SDATA4: return 4;
  case KILN_EH_ABSPTR: case KILN_EH_UDATA8: case KILN_EH_SDATA8: return 8;
  default: return 0;
  }
}

/* The file bytes behind link-time address vaddr (n of them available). */
static const uint8_t *kiln_ehframe_at(const char *img, size_t len, uint64_t vaddr, size_t *avail) {
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
  const Elf64_Phdr *ph = (const Elf64_Phdr *)(img + eh->e_phoff);
  for (unsigned i = 0; i < eh->e_phnum; i++) {
    if (ph[i].p_type != PT_LOAD || vaddr < ph[i].p_vaddr || vaddr - ph[i].p_vaddr >= ph[i].p_filesz) continue;
    uint64_t off = ph[i].p_offset + (vaddr - ph[i].p_vaddr);
    uint64_t seg_end = ph[i].p_offset + ph[i].p_filesz;
    if (off >= len || seg_end > len) return NULL;
    *avail = (size_t)(seg_end - off);
    return (const uint8_t *)img + off;
  }
  return NULL;
}

int kiln_ehframe_open(kiln_ehframe_t *t, const char *img, size_t len) {
  memset(t, 0, sizeof *t);
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
  if (img == NULL || len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > len ||
      eh->e_phnum > (len - eh->e_phoff) / sizeof(Elf64_Phdr))
    return -ENOENT;
  const Elf64_Phdr *ph = (const Elf64_Phdr *)(img + eh->e_phoff);
  const Elf64_Phdr *hdr = NULL;
  for (unsigned i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_GNU_EH_FRAME) hdr = &ph[i];
  if (hdr == NULL) return -ENOENT;
  size_t avail = 0;
  const uint8_t *p = kiln_ehframe_at(img, len, hdr->p_vaddr, &avail);
  if (p == NULL || avail < 4 || p[0] != 1) return -EINVAL;
  kiln_eh_cursor_t c = {p + 4, p + avail, hdr->p_vaddr + 4};
  uint64_t eh_frame = 0, count = 0;
  unsigned table_enc = p[3];
  if (!kiln_ehframe_read(&c, p[1], hdr->p_vaddr, &eh_frame) ||
      !kiln_ehframe_read(&c, p[2], hdr->p_vaddr, &count))
    return -EINVAL;
  /* The binary search needs fixed-size entries relative to the header. */
  size_t esize = kiln_ehframe_fixed_size(table_enc);
  if (esize == 0 || (table_enc & 0x70) != KILN_EH_DATAREL || count == 0 ||
      count > (size_t)(c.end - c.p) / (2 * esize))
    return -EINVAL;
  t->img = img;
  t->len = len;
  t->table = c.p;
  t->count = (size_t)count;
  t->entry_size = esize;
  t->table_enc = table_enc;
  t->hdr_vaddr = hdr->p_vaddr;
  return 0;
}

/* Reads the FDE at vaddr: its pc_begin and pc_range, as its CIE's
 * augmentation ("zR...") says they are encoded. */
static bool kiln_ehframe_fde(const kiln_ehframe_t *t, uint64_t vaddr, uint64_t *begin, uint64_t *range) {
  size_t avail = 0;
  const uint8_t *p = kiln_ehframe_at(t->img, t->len, vaddr, &avail);
  if (p == NULL) return false;
  kiln_eh_cursor_t c = {p, p + avail, vaddr};
  uint32_t len32, cie_off;
  if (!kiln_ehframe_take(&c, &len32, 4) || len32 == 0 || len32 == 0xffffffffu) return false;
  if (len32 > (size_t)(c.end - c.p)) return false;
  c.end = c.p + len32;
  uint64_t cie_field = c.vaddr;
  if (!kiln_ehframe_take(&c, &cie_off, 4) || cie_off == 0 || cie_off > cie_field) return false;
  /* The CIE: only its augmentation matters here. */
  size_t cavail = 0;
  uint64_t cie_vaddr = cie_field - cie_off;
  const uint8_t *q = kiln_ehframe_at(t->img, t->len, cie_vaddr, &cavail);
  if (q == NULL) return false;
  kiln_eh_cursor_t e = {q, q + cavail, cie_vaddr};
  uint32_t clen, cid;
  uint8_t version;
  if (!kiln_ehframe_take(&e, &clen, 4) || clen == 0xffffffffu || clen > (size_t)(e.end - e.p)) return false;
  e.end = e.p + clen;
  if (!kiln_ehframe_take(&e, &cid, 4) || cid != 0 || !kiln_ehframe_take(&e, &version, 1)) return false;
  const char *aug = (const char *)e.p;
  const uint8_t *nul = memchr(e.p, '\0', (size_t)(e.end - e.p));
  if (nul == NULL) return false;
  e.vaddr += (uint64_t)(nul + 1 - e.p);
  e.p = nul + 1;
  if (strstr(aug, "eh") != NULL) return false; /* the old GCC form: not met on x86-64 */
  uint64_t u;
  int64_t s;
  if (!kiln_ehframe_uleb(&e, &u) || !kiln_ehframe_sleb(&e, &s)) return false;
  if (version == 1) {
    uint8_t reg;
    if (!kiln_ehframe_take(&e, &reg, 1)) return false;
  } else if (!kiln_ehframe_uleb(&e, &u)) {
    return false;
  }
  unsigned fde_enc = KILN_EH_ABSPTR;
  if (aug[0] == 'z') {
    if (!kiln_ehframe_uleb(&e, &u)) return false;
    for (const char *a = aug + 1; *a != '\0'; a++) {
      uint8_t b;
      if (*a == 'R') {
        if (!kiln_ehframe_take(&e, &b, 1)) return false;
        fde_enc = b;
        break; /* nothing after R is needed */
      } else if (*a == 'P') {
        uint64_t personality;
        if (!kiln_ehframe_take(&e, &b, 1) || !kiln_ehframe_read(&e, b & 0x7f, 0, &personality)) return false;
      } else if (*a == 'L') {
        if (!kiln_ehframe_take(&e, &b, 1)) return false;
      } else if (*a != 'S' && *a != 'B' && *a != 'G') {
        return false;
      }
    }
  }
  return kiln_ehframe_read(&c, fde_enc, 0, begin) && kiln_ehframe_read(&c, fde_enc & 0x0f, 0, range);
}

static uint64_t kiln_ehframe_entry(const kiln_ehframe_t *t, size_t i, int which) {
  kiln_eh_cursor_t c = {t->table + (2 * i + (size_t)which) * t->entry_size, t->table + (2 * i + 2) * t->entry_size, 0};
  uint64_t v = 0;
  kiln_ehframe_read(&c, t->table_enc, t->hdr_vaddr, &v);
  return v;
}

bool kiln_ehframe_find(const kiln_ehframe_t *t, uint64_t vaddr, uint64_t *start, uint64_t *end) {
  if (t->table == NULL) return false;
  size_t lo = 0, hi = t->count;
  while (lo < hi) { /* first entry above vaddr */
    size_t mid = lo + (hi - lo) / 2;
    if (kiln_ehframe_entry(t, mid, 0) <= vaddr) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return false;
  uint64_t begin = 0, range = 0;
  if (!kiln_ehframe_fde(t, kiln_ehframe_entry(t, lo - 1, 1), &begin, &range)) return false;
  if (begin != kiln_ehframe_entry(t, lo - 1, 0) || vaddr < begin || vaddr - begin >= range) return false;
  *start = begin;
  *end = begin + range;
  return true;
}
