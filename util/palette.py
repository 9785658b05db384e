"""The DAVIS / PASCAL VOC colour palette used by palette ('P' mode) masks."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def davis_palette() -> bytes:
    """Return the 256-entry DAVIS palette as 768 bytes (R, G, B per index).

    This is the PASCAL VOC colour map: the bits of the index are spread,
    three at a time, over the high bits of the red, green and blue channels,
    so index 1 is (128, 0, 0), 2 is (0, 128, 0) and 255 is (224, 224, 192).
    """
    values = bytearray()
    for index in range(256):
        red = green = blue = 0
        code = index
        for bit in range(8):
            red |= ((code >> 0) & 1) << (7 - bit)
            green |= ((code >> 1) & 1) << (7 - bit)
            blue |= ((code >> 2) & 1) << (7 - bit)
            code >>= 3
        values += bytes((red, green, blue))
    return bytes(values)
