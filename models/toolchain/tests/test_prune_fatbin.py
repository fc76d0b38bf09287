"""scripts/gpu/prune_fatbin.py on a synthetic ELF with a `.nv_fatbin` section: only other architectures' payloads
become zero, every header and the kept architecture's bytes stay as they were, and a container with nothing for
the kept architecture is left whole."""
from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "gpu" / "prune_fatbin.py"
_spec = importlib.util.spec_from_file_location("prune_fatbin", SCRIPT)
prune_fatbin = importlib.util.module_from_spec(_spec)
sys.modules["prune_fatbin"] = prune_fatbin  # dataclasses look their module up by name
_spec.loader.exec_module(prune_fatbin)

ENTRY_HEADER = 64


def entry(kind: int, arch: int, payload: bytes) -> bytes:
    header = bytearray(ENTRY_HEADER)
    struct.pack_into("<HHIQ", header, 0, kind, 0x101, ENTRY_HEADER, len(payload))
    struct.pack_into("<I", header, 28, arch)
    return bytes(header) + payload


def container(*entries: bytes) -> bytes:
    body = b"".join(entries)
    return struct.pack("<IHHQ", prune_fatbin.CONTAINER_MAGIC, 1, 16, len(body)) + body


def elf(fatbin: bytes) -> bytes:
    """An ELF64 file with a null section, .shstrtab and .nv_fatbin (what `section` reads)."""
    names = b"\0.shstrtab\0.nv_fatbin\0"
    strtab_at = 64
    fatbin_at = strtab_at + len(names) + (-(strtab_at + len(names)) % 8)
    shoff = fatbin_at + len(fatbin) + (-(fatbin_at + len(fatbin)) % 8)
    head = bytearray(64)
    head[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", head, 0x28, shoff)
    struct.pack_into("<HHH", head, 0x3A, 64, 3, 1)

    def shdr(name: int, offset: int, size: int) -> bytes:
        h = bytearray(64)
        struct.pack_into("<I", h, 0, name)
        struct.pack_into("<QQ", h, 0x18, offset, size)
        return bytes(h)

    out = bytearray(head)
    out += names + bytes(fatbin_at - strtab_at - len(names))
    out += fatbin + bytes(shoff - fatbin_at - len(fatbin))
    out += shdr(0, 0, 0) + shdr(1, strtab_at, len(names)) + shdr(11, fatbin_at, len(fatbin))
    return bytes(out)


def test_zeroes_only_other_architectures_in_containers_that_hold_the_kept_one():
    sm80, sm90, sm120, ptx = b"\x80" * 40, b"\x90" * 24, b"\x12" * 56, b"\x70" * 16
    lone = b"\x81" * 32
    fatbin = container(entry(2, 80, sm80), entry(2, 90, sm90), entry(2, 120, sm120), entry(1, 120, ptx))
    fatbin += bytes(-len(fatbin) % 8) + container(entry(2, 80, lone))
    original = elf(fatbin)
    data = bytearray(original)

    report = prune_fatbin.prune(data, 90)

    assert len(data) == len(original)
    assert report["containers"] == 2 and report["containers_left_whole"] == 1
    assert report["kept_bytes"] == len(sm90)
    assert report["zeroed_bytes_by_sm"] == {"80": len(sm80), "120": len(sm120) + len(ptx)}
    # The kept cubin and the container without one are byte for byte the same; the rest is zero.
    assert data.count(sm90) == 1 and original.index(sm90) == data.index(sm90)
    assert data.count(lone) == 1 and original.index(lone) == data.index(lone)
    for gone in (sm80, sm120, ptx):
        at = original.index(gone)
        assert data[at:at + len(gone)] == bytes(len(gone))
    # Every byte that changed was inside a zeroed payload: headers and everything outside the section are untouched.
    changed = sum(1 for a, b in zip(original, data) if a != b)
    assert changed == len(sm80) + len(sm120) + len(ptx)
    # Nothing left to prune the second time.
    again = bytearray(data)
    prune_fatbin.prune(again, 90)
    assert again == data


def test_refuses_a_malformed_entry_and_a_file_without_the_section(tmp_path):
    bad = bytearray(container(entry(2, 90, b"\x90" * 8)))
    struct.pack_into("<Q", bad, 16 + 8, 1 << 20)  # the entry claims more payload than its container holds
    with pytest.raises(ValueError, match="malformed"):
        prune_fatbin.prune(bytearray(elf(bytes(bad))), 90)
    with pytest.raises(ValueError, match="ELF"):
        prune_fatbin.prune(bytearray(b"not an elf" * 8), 90)
    library = tmp_path / "lib.so"
    library.write_bytes(elf(container(entry(2, 80, b"\x80" * 8))))
    assert prune_fatbin.main([str(library), "--keep-sm", "90"]) == 1  # nothing to keep: the file is not rewritten
    assert library.read_bytes() == elf(container(entry(2, 80, b"\x80" * 8)))
