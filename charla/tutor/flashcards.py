"""Vocabulary flashcards as PNG images (WhatsApp shows images inline; it does not preview PDFs).

Rendered locally with Pillow: the word large, its translation, an example sentence, sized for a phone.
The font is DejaVu Sans (Debian's `fonts-dejavu-core`, on every machine here) for accents and ñ; without
it Pillow's built-in font is used, which lacks them (logged once).
"""

from __future__ import annotations

import io
import logging
import textwrap
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

WIDTH, HEIGHT = 800, 600
FONT_PATHS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf",
              "/Library/Fonts/DejaVuSans.ttf")
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@cache
def font(size: int) -> Font:
    for path in FONT_PATHS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    log.warning("DejaVu Sans not found (apt-get install fonts-dejavu-core): flashcards lose accents")
    return ImageFont.load_default(size=size)


def render(word: str, translation: str, example: str = "") -> bytes:
    """A PNG flashcard."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "#fdf6e3")
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((20, 20, WIDTH - 20, HEIGHT - 20), radius=36, outline="#2aa198", width=6)
    y = 90
    for line in textwrap.wrap(word, 18)[:2]:
        draw.text((WIDTH // 2, y), line, font=font(84), fill="#073642", anchor="mt")
        y += 100
    if translation:
        draw.text((WIDTH // 2, y + 20), translation[:40], font=font(44), fill="#268bd2", anchor="mt")
        y += 100
    for line in textwrap.wrap(example, 34)[:3]:
        draw.text((WIDTH // 2, y + 30), line, font=font(34), fill="#586e75", anchor="mt")
        y += 46
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
