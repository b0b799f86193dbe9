"""The app icons: the sizes Teams requires, a white-on-transparent outline, real artwork."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from manifest import make_icons

MANIFEST_DIR = Path(__file__).resolve().parents[2] / "manifest"


def rgba_pixels(image: Image.Image) -> list[tuple[int, int, int, int]]:
    rgba = image.convert("RGBA")
    return [rgba.getpixel((x, y)) for y in range(rgba.height) for x in range(rgba.width)]


def outline_problems(image: Image.Image) -> list[str]:
    problems = []
    if image.size != (32, 32):
        problems.append(f"size {image.size}")
    if image.mode != "RGBA":
        problems.append(f"mode {image.mode}")
    pixels = rgba_pixels(image)
    coloured = [p for p in pixels if p[3] > 0 and p[:3] != (255, 255, 255)]
    if coloured:
        problems.append(f"{len(coloured)} visible pixels are not white, e.g. {coloured[0]}")
    if not any(p[3] == 0 for p in pixels):
        problems.append("no transparent pixel")
    if not any(p[3] == 255 for p in pixels):
        problems.append("no opaque pixel: nothing to see")
    return problems


def test_color_icon_is_192_square_png():
    with Image.open(MANIFEST_DIR / "color.png") as image:
        assert image.format == "PNG"
        assert image.size == (192, 192)


def test_color_icon_is_artwork_not_a_flat_square():
    with Image.open(MANIFEST_DIR / "color.png") as image:
        pixels = rgba_pixels(image)
    assert len(set(pixels)) > 10
    # Opaque everywhere: a solid background, not a shape floating on transparency.
    assert all(p[3] == 255 for p in pixels)
    # The corners carry the brand colour, the centre something else (the coin).
    corner, centre = pixels[0], pixels[96 * 192 + 60]
    assert corner == make_icons.BRAND + (255,)
    assert centre != corner


def test_outline_icon_is_white_on_transparent():
    with Image.open(MANIFEST_DIR / "outline.png") as image:
        assert image.format == "PNG"
        assert outline_problems(image) == []


@pytest.mark.parametrize(
    "bad",
    [
        Image.new("RGBA", (32, 32), (255, 255, 255, 255)),  # no transparency
        Image.new("RGBA", (32, 32), (0, 0, 0, 0)),  # nothing visible
        Image.new("RGBA", (48, 48), (255, 255, 255, 0)),  # wrong size
    ],
)
def test_outline_check_rejects_bad_icons(bad):
    assert outline_problems(bad) != []


def test_outline_check_rejects_a_coloured_pixel():
    with Image.open(MANIFEST_DIR / "outline.png") as image:
        tinted = image.convert("RGBA")
    x, y = next((x, y) for y in range(32) for x in range(32) if tinted.getpixel((x, y))[3] == 255)
    tinted.putpixel((x, y), (200, 200, 255, 255))
    assert outline_problems(tinted) != []


def test_committed_icons_are_what_the_script_draws():
    # The PNGs are reproducible from make_icons.py: nobody edited them by hand.
    for name, draw in (
        ("color.png", make_icons.color_icon),
        ("outline.png", make_icons.outline_icon),
    ):
        with Image.open(MANIFEST_DIR / name) as committed:
            assert rgba_pixels(committed) == rgba_pixels(draw()), name
