#include "util/build_id.h"

#include <elf.h>
#include <link.h>

#include <cstdint>
#include <cstring>

namespace kestrel::util {

namespace {

struct Search {
  uintptr_t address = 0;
  std::string id;
};

uintptr_t align_up(uintptr_t v, uintptr_t a) { return (v + a - 1) / a * a; }

// The NT_GNU_BUILD_ID note among the notes of one PT_NOTE segment, as hex ("" if none).
std::string build_id_note(const char* p, size_t size, size_t align) {
  const char* end = p + size;
  while (p + sizeof(ElfW(Nhdr)) <= end) {
    const auto* n = reinterpret_cast<const ElfW(Nhdr)*>(p);
    const char* name = p + sizeof(ElfW(Nhdr));
    const char* desc = name + align_up(n->n_namesz, align);
    const char* next = desc + align_up(n->n_descsz, align);
    if (next > end || next <= p) break;
    if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
      static const char* kHex = "0123456789abcdef";
      std::string id;
      for (size_t i = 0; i < n->n_descsz; ++i) {
        const auto b = static_cast<unsigned char>(desc[i]);
        id += kHex[b >> 4];
        id += kHex[b & 15];
      }
      return id;
    }
    p = next;
  }
  return "";
}

int visit(dl_phdr_info* info, size_t, void* data) {
  auto* s = static_cast<Search*>(data);
  bool holds = false;
  for (int i = 0; i < info->dlpi_phnum && !holds; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    const uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    holds = ph.p_type == PT_LOAD && s->address >= start && s->address < start + ph.p_memsz;
  }
  if (!holds) return 0;
  for (int i = 0; i < info->dlpi_phnum && s->id.empty(); ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    // Notes are padded to 4 bytes, or to 8 in a segment aligned to 8.
    const size_t align = ph.p_align == 8 ? 8 : 4;
    s->id = build_id_note(reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr), ph.p_memsz, align);
  }
  return 1;  // the module that holds the address: stop
}

}  // namespace

std::string module_build_id(const void* address) {
  Search s;
  s.address = reinterpret_cast<uintptr_t>(address);
  if (s.address == 0) return "";
  dl_iterate_phdr(visit, &s);
  return s.id;
}

}  // namespace kestrel::util
