"""An inspection's photo is decoded and re-encoded: what is kept is a picture, without its metadata."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from services.supervision.photos import InvalidPhoto, clean_photo
from tests.support.images import GPS_IFD, jpeg_with_gps, pixel_bomb, png

pytestmark = pytest.mark.unit


def test_a_jpeg_loses_its_exif_and_gps_position():
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get(GPS_IFD) is not None
    cleaned = clean_photo(original, "image/jpeg")
    kept = Image.open(io.BytesIO(cleaned.data))
    assert kept.format == "JPEG" and (cleaned.width, cleaned.height) == kept.size == (64, 48)
    assert dict(kept.getexif()) == {}
    assert b"Exif" not in cleaned.data and b"PhoneMaker" not in cleaned.data


def test_a_png_stays_a_png():
    cleaned = clean_photo(png(), "image/png")
    assert Image.open(io.BytesIO(cleaned.data)).format == "PNG"
    assert cleaned.content_type == "image/png"


@pytest.mark.parametrize(("data", "content_type"), [
    (b"Bukan gambar, hanya teks biasa.", "image/png"),
    (png(), "image/jpeg"),  # what it says it is, or nothing
    (png(), "text/plain"),
    (png()[:40], "image/png"),
    (b"", "image/jpeg"),
])
def test_what_is_not_the_image_it_says_it_is_is_refused(data, content_type):
    with pytest.raises(InvalidPhoto):
        clean_photo(data, content_type)


def test_a_decompression_bomb_is_refused_before_it_is_decoded():
    bomb = pixel_bomb()
    assert len(bomb) < 256 * 1024
    with pytest.raises(InvalidPhoto, match="pixels"):
        clean_photo(bomb, "image/png")
