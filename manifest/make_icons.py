"""Draw the app icons: `python -m manifest.make_icons` rewrites color.png and outline.png.

- color.png, 192x192: a gold coin bearing a phone handset, on the brand colour (the manifest's
  accentColor) filling the square; Teams rounds the corners itself.
- outline.png, 32x32: the same handset inside a coin ring, white on transparent, as Teams
  requires for the monochrome icon in the app bar.

Shapes are drawn at 8x and reduced, so edges are smooth; in the outline only the alpha channel
carries the anti-aliasing, every visible pixel stays pure white. The output depends only on
this file and the pinned Pillow, so the committed PNGs can be regenerated at will.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

MANIFEST_DIR = Path(__file__).resolve().parent
BRAND = (15, 76, 129)  # #0F4C81, the manifest's accentColor
GOLD = (246, 190, 40)
GOLD_RIM = (204, 145, 18)
SCALE = 8
Box = tuple[float, float, float, float]


def handset_mask(size: int, box: Box, angle: float = 45) -> Image.Image:
    """An "L" mask of a classic telephone handset filling `box` (in final pixels).

    Drawn upright — earpiece at the top, mouthpiece at the bottom, joined by a grip that bows to
    the left — then turned by `angle` degrees into the familiar diagonal pose.
    """
    s = SCALE
    side = size * s
    x0, y0, x1, y1 = (v * s for v in box)
    w, h = x1 - x0, y1 - y0
    # Work on a square canvas around the box centre so rotation does not clip.
    span = int(max(w, h) * 2)
    layer = Image.new("L", (span, span), 0)
    draw = ImageDraw.Draw(layer)
    cx, cy = span / 2, span / 2

    length = max(w, h) * 1.1  # earpiece top to mouthpiece bottom
    grip = length * 0.24  # thickness of the grip
    cup_w, cup_h = length * 0.42, length * 0.3  # ear and mouth pieces
    # The grip: a thick arc of a circle whose centre lies to the right of the handset.
    radius = length * 0.58
    arc_cx = cx + radius - length * 0.16
    half = math.degrees(math.asin((length / 2 - cup_h * 0.45) / radius))
    draw.arc(
        (arc_cx - radius, cy - radius, arc_cx + radius, cy + radius),
        start=180 - half,
        end=180 + half,
        fill=255,
        width=int(grip),
    )
    # Ear and mouth pieces: rounded pads at both ends of the grip, reaching to the right.
    for sign in (-1, 1):
        end_y = cy + sign * (length / 2 - cup_h / 2)
        end_x = arc_cx - math.sqrt(max(radius**2 - (end_y - cy) ** 2, 0)) + grip * 0.15
        draw.rounded_rectangle(
            (
                end_x - grip * 0.35,
                end_y - cup_h / 2,
                end_x - grip * 0.35 + cup_w,
                end_y + cup_h / 2,
            ),
            radius=cup_h * 0.45,
            fill=255,
        )
    layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC, center=(cx, cy))
    # Fit the drawn shape (not the canvas around it) into the box, centred.
    layer = layer.crop(layer.getbbox())
    fit = min(w / layer.width, h / layer.height)
    layer = layer.resize(
        (round(layer.width * fit), round(layer.height * fit)), Image.Resampling.LANCZOS
    )
    canvas = Image.new("L", (side, side), 0)
    canvas.paste(layer, (round(x0 + (w - layer.width) / 2), round(y0 + (h - layer.height) / 2)))
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def circle_mask(size: int, box: Box, width: float = 0) -> Image.Image:
    """A disc (or, with `width`, a ring of that many final pixels) filling `box`."""
    big = Image.new("L", (size * SCALE, size * SCALE), 0)
    draw = ImageDraw.Draw(big)
    scaled = tuple(v * SCALE for v in box)
    if width:
        draw.ellipse(scaled, outline=255, width=int(width * SCALE))
    else:
        draw.ellipse(scaled, fill=255)
    return big.resize((size, size), Image.Resampling.LANCZOS)


def color_icon() -> Image.Image:
    size = 192
    icon = Image.new("RGBA", (size, size), BRAND + (255,))
    # The coin sits in Teams' safe area for the colour icon (the middle ~120 px).
    coin = (36, 36, 156, 156)
    icon.paste(GOLD_RIM + (255,), (0, 0), circle_mask(size, coin))
    icon.paste(GOLD + (255,), (0, 0), circle_mask(size, (44, 44, 148, 148)))
    icon.paste(GOLD_RIM + (255,), (0, 0), circle_mask(size, (52, 52, 140, 140), width=2))
    icon.paste(BRAND + (255,), (0, 0), handset_mask(size, (68, 68, 124, 124)))
    return icon


def outline_icon() -> Image.Image:
    size = 32
    alpha = Image.new("L", (size, size), 0)
    alpha.paste(255, (0, 0), circle_mask(size, (1, 1, 31, 31), width=2.5))
    alpha.paste(255, (0, 0), handset_mask(size, (8, 8, 24, 24)))
    # Pure white everywhere; the shape lives in the alpha channel alone.
    icon = Image.new("RGBA", (size, size), (255, 255, 255, 0))
    icon.putalpha(alpha)
    return icon


def main() -> None:
    color_icon().save(MANIFEST_DIR / "color.png", optimize=True)
    outline_icon().save(MANIFEST_DIR / "outline.png", optimize=True)


if __name__ == "__main__":
    main()
