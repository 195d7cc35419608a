"""Images: JPEG, PNG, GIF, WebP to one RGB ``PIL.Image``.

The pixel count is checked from the header, before any pixel is decoded: a 50 kB PNG
can claim 100000x100000 pixels and would take 30 GB to decode (a decompression bomb).
Animated GIFs (and animated WebP/APNG): the first frame is used, as most VLM servers do
and as a still image part implies; a warning says so. Transparent pixels are composited
on white, which is how a browser shows them on a default page.
"""

from __future__ import annotations

import io
import re
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from omni_sglang.media.errors import MediaError, MediaLimitError
from omni_sglang.media.limits import MediaLimits

_PIL_FORMATS = ["JPEG", "PNG", "GIF", "WEBP"]
_ORIENTATION = 0x0112  # the EXIF tag


def decode_image_with_warnings(data: bytes, limits: MediaLimits) -> tuple[Image.Image, list[str]]:
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            # Our own pixel limit is the guard; PIL's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
    except Image.DecompressionBombError as exc:
        raise _bomb_error(exc, limits) from exc
    except UnidentifiedImageError as exc:
        raise MediaError(
            "image could not be decoded: the data is not a valid JPEG, PNG, GIF or WebP "
            "(corrupt or truncated header)"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"image could not be decoded: {exc}") from exc

    width, height = img.size
    if width <= 0 or height <= 0:
        raise MediaError(f"image has an empty size {width}x{height}")
    if width * height > limits.max_image_pixels:
        raise MediaLimitError(
            f"image is {width}x{height} pixels ({width * height}); the limit is "
            f"{limits.max_image_pixels} pixels"
        )
    try:
        if getattr(img, "is_animated", False):
            notes.append(
                f"animated {img.format} image with {getattr(img, 'n_frames', '?')} frames: "
                "only the first frame is used"
            )
            img.seek(0)
        img.load()  # the actual decode: truncation and corruption surface here
        # Phone photos store their rotation in EXIF. Checked first: exif_transpose copies
        # the image even when there is nothing to turn (15-25 ms for 12 MP).
        upright = ImageOps.exif_transpose(img) if img.getexif().get(_ORIENTATION, 1) != 1 else img
        rgb = _to_rgb(upright)
    except Image.DecompressionBombError as exc:
        raise _bomb_error(exc, limits) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaError(f"image is truncated or corrupt: {exc}") from exc
    return rgb, notes


def decode_image(data: bytes, limits: MediaLimits) -> Image.Image:
    """The image in ``data`` as RGB; MediaError / MediaLimitError when it cannot be."""
    return decode_image_with_warnings(data, limits)[0]


def _bomb_error(exc: Exception, limits: MediaLimits) -> MediaLimitError:
    # PIL refuses far-too-large images itself, while opening, before we see the size.
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{found.group(1)} pixels" if found else "far too large"
    return MediaLimitError(f"image is {size}; the limit is {limits.max_image_pixels} pixels")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if not has_alpha:
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background
