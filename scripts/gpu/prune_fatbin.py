#!/usr/bin/env python3
"""Shrink ONNX Runtime's CUDA provider for the trip to one GPU architecture, without changing what that GPU runs.

The provider library (libonnxruntime_providers_cuda.so, 230 MB) is mostly its `.nv_fatbin` section: every CUDA
kernel compiled once per GPU architecture (sm_75, 80, 86, 89, 90 and 120 in the 1.29.0 CUDA 13 build). A GPU runs
only the machine code built for its own architecture (a cubin runs on its major version only, so an sm_80 cubin
cannot run on an sm_90 H100 or H200), and the CUDA runtime picks that one entry by the architecture in each
entry's header. This tool zeroes the payload of every other architecture's cubin in place. The file keeps its
size, its layout and every header, so nothing that points into it moves; the zeroed runs compress to almost
nothing, so the xz-compressed provider travels in fewer device calls. A container (one compilation unit's
kernels) that holds no cubin for the kept architecture is left whole.

Fatbin layout (as the CUDA toolkit writes it, little-endian):
  container: u32 magic 0xBA55ED50, u16 version, u16 header size, u64 size of the entries that follow;
  entry:     u16 kind (1 PTX, 2 cubin), u16 version, u32 header size, u64 padded payload size, ...,
             u32 architecture (e.g. 90) at byte 28; the payload follows the header.

  python3 scripts/gpu/prune_fatbin.py --keep-sm 90 libonnxruntime_providers_cuda.so [--out pruned.so]
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple, Union

CONTAINER_MAGIC = 0xBA55ED50
KIND_PTX, KIND_CUBIN = 1, 2
_CONTAINER = struct.Struct("<IHHQ")
_ENTRY_KIND_HEADER = struct.Struct("<HHIQ")  # kind, version, header size, padded payload size
_ENTRY_ARCH_OFFSET = 28


@dataclass(frozen=True)
class Entry:
    kind: int
    arch: int
    payload_offset: int  # in the file
    payload_size: int


def section(data: Union[bytes, bytearray], name: str) -> Tuple[int, int]:
    """(file offset, size) of an ELF64 little-endian section by name."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(i: int) -> Tuple[int, int, int]:
        base = shoff + i * shentsize
        name_off, = struct.unpack_from("<I", data, base)
        offset, size = struct.unpack_from("<QQ", data, base + 0x18)
        return name_off, offset, size

    _, strtab, _ = header(shstrndx)
    for i in range(shnum):
        name_off, offset, size = header(i)
        end = data.index(b"\0", strtab + name_off)
        if data[strtab + name_off:end].decode() == name:
            return offset, size
    raise ValueError(f"no {name} section")


def containers(data: Union[bytes, bytearray], start: int, size: int) -> List[List[Entry]]:
    """The fatbin containers of a section, each as its entries. Containers are 8-byte aligned; the gaps are padding."""
    out: List[List[Entry]] = []
    pos, end = start, start + size
    while pos + _CONTAINER.size <= end:
        magic, _, header_size, body = _CONTAINER.unpack_from(data, pos)
        if magic != CONTAINER_MAGIC:
            pos += 8
            continue
        entries: List[Entry] = []
        p, stop = pos + header_size, pos + header_size + body
        if stop > end:
            raise ValueError(f"container at {pos:#x} runs past the section's end")
        while p < stop:
            kind, _, entry_header, padded = _ENTRY_KIND_HEADER.unpack_from(data, p)
            arch, = struct.unpack_from("<I", data, p + _ENTRY_ARCH_OFFSET)
            if entry_header == 0 or p + entry_header + padded > stop:
                raise ValueError(f"entry at {p:#x} of the container at {pos:#x} is malformed")
            entries.append(Entry(kind, arch, p + entry_header, padded))
            p += entry_header + padded
        out.append(entries)
        pos = stop
    return out


def prune(data: bytearray, keep_sm: int) -> Dict[str, object]:
    """Zero, in place, every entry's payload whose architecture is not `keep_sm`, in the containers that hold a
    cubin for `keep_sm`. Returns what it counted, per architecture, in bytes."""
    # Read in place: the provider is 230 MB, and both readers take a bytearray as they take bytes.
    start, size = section(data, ".nv_fatbin")
    found = containers(data, start, size)
    zeroed: Dict[int, int] = {}
    kept = 0
    whole = 0
    for entries in found:
        if not any(e.kind == KIND_CUBIN and e.arch == keep_sm for e in entries):
            whole += 1
            continue
        for e in entries:
            if e.arch == keep_sm:
                kept += e.payload_size
                continue
            data[e.payload_offset:e.payload_offset + e.payload_size] = bytes(e.payload_size)
            zeroed[e.arch] = zeroed.get(e.arch, 0) + e.payload_size
    return {
        "section_bytes": size,
        "containers": len(found),
        "containers_left_whole": whole,
        "kept_bytes": kept,
        "zeroed_bytes_by_sm": {str(k): v for k, v in sorted(zeroed.items())},
    }


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("library", type=Path)
    ap.add_argument("--keep-sm", type=int, default=90, help="the GPU architecture to keep (90: H100, H200)")
    ap.add_argument("--out", type=Path, help="write here (default: in place)")
    a = ap.parse_args(argv)
    data = bytearray(a.library.read_bytes())
    report = prune(data, a.keep_sm)
    if report["kept_bytes"] == 0:
        print(f"no sm_{a.keep_sm} cubin in {a.library}: nothing written", file=sys.stderr)
        return 1
    (a.out or a.library).write_bytes(data)
    print(json.dumps({"library": str(a.out or a.library), "keep_sm": a.keep_sm, **report}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
