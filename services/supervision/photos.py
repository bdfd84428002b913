"""An inspection's photo: decoded to prove it is the image it says it is, then re-encoded, so that what is stored
carries no metadata (EXIF, with its GPS position and camera serial) and no bytes beyond the picture."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

PHOTO_MAX_BYTES = 5 * 1024 * 1024
# Beyond a camera's (a phone's largest take 50 MP in a mode inspectors do not need): a small file that claims more is
# a decompression bomb, refused before its pixels are decoded.
PHOTO_MAX_PIXELS = 40_000_000
FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}


class InvalidPhoto(ValueError):
    pass


@dataclass(frozen=True)
class CleanPhoto:
    content_type: str
    data: bytes
    width: int
    height: int


def clean_photo(data: bytes, content_type: str) -> CleanPhoto:
    """The photo re-encoded in its own format, or InvalidPhoto saying why not."""
    wanted = FORMATS.get(content_type)
    if wanted is None:
        raise InvalidPhoto("a photo is sent as image/jpeg or image/png")
    try:
        with warnings.catch_warnings():
            # Pillow's own bound is far above ours: ours decides, with the size in its message.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[wanted])  # reads the header only
    except Image.DecompressionBombError:
        raise InvalidPhoto(f"a photo has at most {PHOTO_MAX_PIXELS:,} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidPhoto(f"the body is not a readable {content_type} image") from None
    width, height = image.size
    if width * height > PHOTO_MAX_PIXELS:
        raise InvalidPhoto(f"a photo has at most {PHOTO_MAX_PIXELS:,} pixels; this one claims {width}×{height}")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError):
        raise InvalidPhoto(f"the body is not a readable {content_type} image") from None
    kept: Image.Image = image
    if image.mode not in ("RGB", "L", "RGBA", "LA", "P") or (wanted == "JPEG" and image.mode not in ("RGB", "L")):
        kept = image.convert("RGB")
    out = io.BytesIO()
    # No `exif=`, `icc_profile=` or `pnginfo=` given: Pillow writes none of the original's metadata.
    kept.save(out, format=wanted, **({"quality": 90} if wanted == "JPEG" else {"optimize": False}))
    return CleanPhoto(content_type, out.getvalue(), width, height)
