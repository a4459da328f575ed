"""A structural check of an ELF relocatable object before LLVM loads it from the disk
cache.

LLVM's loader (RuntimeDyld) trusts its input: a section or symbol pointing outside the
file, or a relocation type it does not implement, aborts the process. Every entry of the
disk cache is checked here first. The check covers the header, section bounds, the
symbol and string tables, and each relocation's symbol, offset and type. It also requires
the two entry points the tier needs. It cannot tell sound machine code from damaged
machine code, and it does not try to: the cache's checksum and key binding cover that.
"""

from __future__ import annotations

import platform
import struct
from typing import Dict, List, Optional, Tuple

_SHT_SYMTAB, _SHT_STRTAB, _SHT_RELA, _SHT_NOBITS, _SHT_REL = 2, 3, 4, 8, 9
_SHN_LORESERVE = 0xFF00
_MACHINES = {"x86_64": 62, "amd64": 62, "aarch64": 183, "arm64": 183}
# Relocation types RuntimeDyldELF implements for x86-64 (others abort in LLVM).
_X86_64_RELOCATIONS = frozenset({0, 1, 2, 3, 4, 9, 10, 11, 24, 26, 41, 42})
ENTRY_POINTS = ("alkahest_scalar", "alkahest_bulk")


def problem(data: bytes) -> Optional[str]:
    """Why ``data`` is not a well-formed relocatable object for this machine with both
    entry points defined; None when it is."""
    try:
        return _check(memoryview(data))
    except (struct.error, IndexError, ValueError) as e:
        return f"malformed ({e})"


def _check(b: memoryview) -> Optional[str]:
    n = len(b)
    if n < 64 or bytes(b[:4]) != b"\x7fELF":
        return "not an ELF file"
    if b[4] != 2 or b[5] != 1 or b[6] != 1:
        return "not a 64-bit little-endian ELF file"
    e_type, e_machine = struct.unpack_from("<HH", b, 16)
    shoff, = struct.unpack_from("<Q", b, 40)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", b, 58)
    machine = _MACHINES.get(platform.machine().lower())
    if e_type != 1:
        return "not a relocatable object"
    if machine is not None and e_machine != machine:
        return f"made for machine {e_machine}, not this one"
    if shentsize != 64 or shnum == 0 or shoff + shnum * 64 > n or shstrndx >= shnum:
        return "section header table out of bounds"
    sections: List[Tuple[int, int, int, int, int, int]] = []  # type, offset, size, link, info, entsize
    for i in range(shnum):
        _, sh_type, _, _, off, size, link, info, _, entsize = struct.unpack_from("<IIQQQQIIQQ", b, shoff + 64 * i)
        if sh_type != _SHT_NOBITS and off + size > n:
            return f"section {i} out of bounds"
        sections.append((sh_type, off, size, link, info, entsize))
    symbols: Dict[int, List[Tuple[int, int, int]]] = {}  # symtab index -> [(name, info, shndx)]
    defined = set()
    for i, (sh_type, off, size, link, _, entsize) in enumerate(sections):
        if sh_type != _SHT_SYMTAB:
            continue
        if entsize != 24 or size % 24 or link >= shnum or sections[link][0] != _SHT_STRTAB:
            return f"symbol table {i} malformed"
        str_off, str_size = sections[link][1], sections[link][2]
        table = []
        for k in range(size // 24):
            name, info, _, shndx = struct.unpack_from("<IBBH", b, off + 24 * k)
            if name >= max(str_size, 1) or (shndx >= shnum and shndx < _SHN_LORESERVE):
                return f"symbol {k} of table {i} out of bounds"
            table.append((name, info, shndx))
            if shndx != 0 and shndx < shnum and info & 0xF == 2:  # a defined function
                end = bytes(b[str_off + name:str_off + str_size]).split(b"\0", 1)[0]
                defined.add(end.decode("latin-1"))
        symbols[i] = table
    missing = [e for e in ENTRY_POINTS if e not in defined]
    if missing:
        return f"entry points missing: {', '.join(missing)}"
    for i, (sh_type, off, size, link, info, entsize) in enumerate(sections):
        if sh_type == _SHT_REL:
            return f"section {i}: REL relocations (x86-64 objects use RELA)"
        if sh_type != _SHT_RELA:
            continue
        if entsize != 24 or size % 24 or link not in symbols or info >= shnum:
            return f"relocation section {i} malformed"
        target_size = sections[info][2]
        for k in range(size // 24):
            r_offset, r_info, _ = struct.unpack_from("<QQq", b, off + 24 * k)
            if r_info >> 32 >= len(symbols[link]) or r_offset >= target_size:
                return f"relocation {k} of section {i} out of bounds"
            if machine == 62 and r_info & 0xFFFFFFFF not in _X86_64_RELOCATIONS:
                return f"relocation {k} of section {i} has a type LLVM cannot load ({r_info & 0xFFFFFFFF})"
    return None
