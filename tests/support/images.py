"""Images for the photo tests, made with Pillow: a camera's JPEG with its GPS position in EXIF, a PNG, a bomb."""

from __future__ import annotations

import io

from PIL import Image

GPS_IFD = 0x8825


def jpeg_with_gps(size: tuple[int, int] = (64, 48)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[GPS_IFD] = {1: "S", 2: (6.0, 17.0, 0.0), 3: "E", 4: (107.0, 9.0, 0.0)}  # Cibitung
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def png(size: tuple[int, int] = (32, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (0, 120, 0, 255)).save(out, format="PNG")
    return out.getvalue()


def pixel_bomb() -> bytes:
    """A small PNG of a hundred million pixels: tens of KiB on the wire, hundreds of MiB decoded."""
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, format="PNG")
    return out.getvalue()
