#!/usr/bin/env python3
"""Static size of each kernel's K loop in a cubin, with no disassembler (none ships with this CUDA).

sm_90 instructions are 16 bytes; the low 12 bits of the first word are the opcode (read off a cuobjdump
listing of the same kernels: HMMA 0x23c, LDSM 0x83b, LDGSTS 0xfae, DEPBAR 0x91a, BRA 0x947). The loop is
taken from the DEPBAR before a kernel's first HMMA to the first branch after it: its instructions, and
how many are the products, fragment loads and copies that do the work.
  nvcc ... -arch=sm_90 -cubin src/backend/cuda/conv_igemm.cu -o a.cubin
  bench/cubin_loops.py a.cubin [b.cubin] [--match igemm_kernel]
"""
import argparse
import re
import struct

HMMA, LDSM, LDGSTS, DEPBAR, BRA = 0x23C, 0x83B, 0xFAE, 0x91A, 0x947


def kernels(path, match):
    d = open(path, "rb").read()
    shoff = struct.unpack_from("<Q", d, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)
    hdrs = [struct.unpack_from("<IIQQQQIIQQ", d, shoff + i * shentsize) for i in range(shnum)]
    names = hdrs[shstrndx][4]
    for h in hdrs:
        name = d[names + h[0]:d.index(b"\0", names + h[0])].decode()
        if name.startswith(".text.") and match in name:
            text = d[h[4]:h[4] + h[5]]
            # Template arguments identify a kernel across builds (the anonymous namespace's hash does not).
            m = re.search(r"_cu_[0-9a-f]{8}(.*)", name)
            key = m.group(1) if m else name[len(".text."):]
            yield key, [struct.unpack_from("<Q", text, i)[0] & 0xFFF for i in range(0, len(text), 16)]


def loop(ops):
    first = ops.index(HMMA) if HMMA in ops else None
    if first is None:
        return None
    start = max((i for i in range(first) if ops[i] == DEPBAR), default=0)
    end = next((i for i in range(first, len(ops)) if ops[i] == BRA), len(ops) - 1)
    seg = ops[start:end + 1]
    return len(seg), seg.count(HMMA), seg.count(LDSM), seg.count(LDGSTS)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cubins", nargs="+")
    ap.add_argument("--match", default="igemm_kernel")
    a = ap.parse_args()
    table = {}
    for i, path in enumerate(a.cubins):
        for key, ops in kernels(path, a.match):
            table.setdefault(key, [None] * len(a.cubins))[i] = (len(ops), loop(ops))
    print("kernel | " + " | ".join(f"{p}: total, loop (hmma ldsm ldgsts)" for p in a.cubins))
    for key, cols in table.items():
        cells = []
        for c in cols:
            if c is None:
                cells.append("-")
            else:
                total, l = c
                cells.append(f"{total}, " + (f"{l[0]} ({l[1]} {l[2]} {l[3]})" if l else "no loop"))
        print(f"{key} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
