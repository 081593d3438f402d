#!/usr/bin/env python3
"""Checks that a PNG screenshot is not blank where the report's charts are: decodes it (8-bit
RGB or RGBA, no interlace: what chromium writes) with zlib alone, and counts, in the rows
TOP..BOTTOM, the pixels that are not background and the distinct colours.

    pngcheck.py FILE TOP BOTTOM MIN_INK MIN_COLOURS     exit 0 when both minimums are met
"""
import struct
import sys
import zlib

path, top, bottom, min_ink, min_colours = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, width = 8, b"", 0
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR":
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
        bpp = 3 if colour == 2 else 4
    elif kind == b"IDAT":
        idat += body
    pos += 12 + length
raw = zlib.decompress(idat)
stride = width * bpp
rows, prev, i = [], bytearray(stride), 0
for _ in range(height):
    f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
    i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line))
    prev = line
ink, colours = 0, set()
for y in range(max(0, top), min(height, bottom)):
    row = rows[y]
    for x in range(0, stride, bpp):
        px = row[x:x + 3]
        colours.add(px)
        if px not in (b"\xff\xff\xff", b"\xfa\xfa\xfa"):
            ink += 1
print(f"{path}: {width}x{height}, rows {top}-{bottom}: {ink} inked pixels, {len(colours)} colours")
sys.exit(0 if ink >= min_ink and len(colours) >= min_colours else 1)
