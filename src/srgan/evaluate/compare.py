"""Side-by-side figures: LR | bicubic | each model | HR, with a zoomed inset and the scores.

A row per image. Each panel shows the whole picture (scaled to the panel width, the inset's
region outlined) and, under it, the inset: that region enlarged with nearest-neighbour so
every pixel a method produced stays visible. The region is where the methods disagree most
(unless given), which is where a reader should look. Under each panel: Y-PSNR / Y-SSIM of
the whole image against HR, scored as `srgan benchmark` does.

Grid mode, for many images: one row per image with only the insets (and a small HR view),
the method names once at the top.

    from srgan.evaluate import compare_images
    figures = compare_images(["photo.png"], ["srresnet_x4", "srgan_mse_x4"])
    figures[0].image.save("photo_compare.png")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from srgan.atomic import atomic_write
from srgan.evaluate.methods import Method, load_methods, load_rgb8, prepare_pair

Box = tuple[int, int, int, int]  # x, y, width, height in HR (output) pixels

PAD = 8  # pixels between and around panels
FONT_SIZE = 15
BOX_COLOUR = (230, 20, 20)
BACKGROUND = (255, 255, 255)
TEXT = (20, 20, 20)


# --------------------------------------------------------------------------- content
@dataclass
class Panel:
    """One column: a label, the image at HR size (uint8, 3 x H x W), a caption."""

    label: str
    image: torch.Tensor
    caption: str = ""


@dataclass
class Comparison:
    """One image's panels and the region to zoom into."""

    name: str
    panels: list[Panel]
    box: Box


@dataclass
class Figure:
    """A rendered figure and where each panel's parts are (for tests and for callers who
    want to annotate further): rects are (left, top, right, bottom) in figure pixels."""

    image: Image.Image
    rects: list[dict[str, tuple[int, int, int, int]]] = field(default_factory=list)


def parse_box(text: str) -> Box:
    """'x,y,w,h' -> a Box of integers (HR pixels)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"box must be four integers x,y,w,h, got {text!r}") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise ValueError(f"box {text!r}: x, y must be >= 0 and w, h > 0")
    return x, y, w, h


def check_box(box: Box, height: int, width: int) -> Box:
    x, y, w, h = box
    if x + w > width or y + h > height:
        raise ValueError(f"box {x},{y},{w},{h} does not fit an image of {width}x{height}")
    return box


def _luma(x: torch.Tensor) -> torch.Tensor:
    xf = x.to(torch.float32)
    return 0.299 * xf[0] + 0.587 * xf[1] + 0.114 * xf[2]


def choose_box(
    outputs: Sequence[torch.Tensor], size: int | None = None, border: int = 0
) -> Box:
    """The square region where the outputs (uint8, 3 x H x W) differ most from each other in
    detail: highest mean per-pixel spread, across outputs, of high-passed luma (luma minus
    its 5x5 local mean, so a tone shift alone does not attract the inset). With a single
    output, the region of most detail (gradient energy) instead. `border` pixels at each
    side are never chosen."""
    if not outputs:
        raise ValueError("choose_box needs at least one image")
    _, h, w = outputs[0].shape
    inner_h, inner_w = h - 2 * border, w - 2 * border
    if inner_h < 1 or inner_w < 1:
        border, inner_h, inner_w = 0, h, w
    if size is None:
        size = max(8, min(160, round(min(h, w) / 4)))
    size = max(1, min(size, inner_h, inner_w))
    lum = torch.stack([_luma(o) for o in outputs])
    lum = lum[:, border:border + inner_h, border:border + inner_w]
    if len(outputs) > 1:
        local = F.avg_pool2d(F.pad(lum[:, None], (2, 2, 2, 2), mode="replicate"), 5, stride=1)
        spread = (lum - local[:, 0]).std(dim=0, unbiased=False)
    else:
        gy = F.pad((lum[0, 1:] - lum[0, :-1]).abs(), (0, 0, 0, 1))
        gx = F.pad((lum[0, :, 1:] - lum[0, :, :-1]).abs(), (0, 1, 0, 0))
        spread = gx + gy
    stride = max(1, size // 4)
    pooled = F.avg_pool2d(spread[None, None], size, stride=stride)[0, 0]
    idx = int(torch.argmax(pooled))
    row, col = divmod(idx, pooled.shape[1])
    return border + col * stride, border + row * stride, size, size


def build_comparison(
    path: str | Path,
    methods: Sequence[Method],
    scale: int = 4,
    box: Box | None = None,
    box_size: int | None = None,
    input_is_lr: bool = False,
    crop_border: int | None = None,
) -> Comparison:
    """Panels for one image. HR input (the normal case): modcrop, LR by MATLAB bicubic, each
    method scored against HR. LR input (`input_is_lr`): no HR column and no scores."""
    from srgan.evaluate.scoring import score_pair

    img, _notes = load_rgb8(path)
    if input_is_lr:
        hr, lr = None, img
    else:
        hr, lr = prepare_pair(img, scale)
    crop = scale if crop_border is None else crop_border
    lr_big = lr.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    panels = [Panel(f"LR (x{scale} nearest)", lr_big, f"{lr.shape[2]}x{lr.shape[1]} px input")]
    outputs = []
    for m in methods:
        sr = m(lr)
        outputs.append(sr)
        caption = ""
        if hr is not None:
            s = score_pair(sr, hr, crop)
            caption = f"{s['psnr_y']:.2f} dB / {s['ssim_y']:.4f}"
        panels.append(Panel(m.name, sr, caption))
    if hr is not None:
        panels.append(Panel("HR (original)", hr, "reference (Y-PSNR / SSIM)"))
    _, h, w = outputs[0].shape if outputs else lr_big.shape
    if box is None:
        box = choose_box(outputs or [lr_big], box_size, border=crop)
    return Comparison(Path(path).stem, panels, check_box(box, h, w))


# --------------------------------------------------------------------------- drawing
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: bitmap font
        return ImageFont.load_default()


def _to_pil(x: torch.Tensor) -> Image.Image:
    return Image.fromarray(x.permute(1, 2, 0).contiguous().numpy(), "RGB")


def _fit(img: Image.Image, width: int) -> Image.Image:
    """Scale to `width` keeping the aspect: Lanczos when shrinking, nearest when enlarging."""
    w, h = img.size
    height = max(1, round(h * width / w))
    resample = Image.Resampling.LANCZOS if width < w else Image.Resampling.NEAREST
    return img.resize((width, height), resample)


def _inset(img: Image.Image, box: Box, width: int) -> Image.Image:
    x, y, w, h = box
    crop = img.crop((x, y, x + w, y + h))
    return crop.resize((width, max(1, round(h * width / w))), Image.Resampling.NEAREST)


def _text_height(font) -> int:
    left, top, right, bottom = font.getbbox("Ag")
    return bottom + 4


def _centre_text(draw: ImageDraw.ImageDraw, x0: int, width: int, y: int, text: str, font):
    tw = draw.textlength(text, font=font)
    draw.text((x0 + max(0, (width - tw) / 2), y), text, fill=TEXT, font=font)


def _outline(draw: ImageDraw.ImageDraw, rect: tuple[int, int, int, int], width: int = 2):
    draw.rectangle(rect, outline=BOX_COLOUR, width=width)


def render_row(comp: Comparison, panel_width: int = 256, font_size: int = FONT_SIZE) -> Figure:
    """One image: per panel a label, the whole image with the box, the inset, the caption.

    Size: width = PAD + n * (panel_width + PAD); every panel has the same height.
    """
    font = _font(font_size)
    th = _text_height(font)
    n = len(comp.panels)
    _, H, W = comp.panels[0].image.shape
    full_h = max(1, round(H * panel_width / W))
    inset_h = max(1, round(comp.box[3] * panel_width / comp.box[2]))
    height = PAD + th + full_h + PAD + inset_h + PAD + th + PAD
    fig = Image.new("RGB", (PAD + n * (panel_width + PAD), height), BACKGROUND)
    draw = ImageDraw.Draw(fig)
    sx = panel_width / W
    x, y, w, h = comp.box
    rects = []
    for i, panel in enumerate(comp.panels):
        left = PAD + i * (panel_width + PAD)
        pil = _to_pil(panel.image)
        _centre_text(draw, left, panel_width, PAD, panel.label, font)
        top = PAD + th
        fig.paste(_fit(pil, panel_width), (left, top))
        _outline(draw, (left + round(x * sx), top + round(y * sx),
                        left + round((x + w) * sx) - 1, top + round((y + h) * sx) - 1))
        full_rect = (left, top, left + panel_width, top + full_h)
        top += full_h + PAD
        fig.paste(_inset(pil, comp.box, panel_width), (left, top))
        inset_rect = (left, top, left + panel_width, top + inset_h)
        _centre_text(draw, left, panel_width, top + inset_h + PAD // 2, panel.caption, font)
        rects.append({"full": full_rect, "inset": inset_rect})
    return Figure(fig, rects)


def render_grid(
    comps: Sequence[Comparison], panel_width: int = 192, font_size: int = FONT_SIZE
) -> Figure:
    """Many images: a header of method names, then per image a small HR (or LR) view with
    the box and the insets of every panel, each captioned with its scores."""
    if not comps:
        raise ValueError("no images to put in a grid")
    font = _font(font_size)
    th = _text_height(font)
    labels = ["image"] + [p.label for p in comps[0].panels]
    if any([p.label for p in c.panels] != labels[1:] for c in comps):
        raise ValueError("all rows of a grid need the same methods")
    n = len(labels)
    heights = []
    for c in comps:
        _, H, W = c.panels[-1].image.shape
        full_h = max(1, round(H * panel_width / W))
        inset_h = max(1, round(c.box[3] * panel_width / c.box[2]))
        heights.append(max(full_h, inset_h) + PAD + th)
    height = PAD + th + sum(h + PAD for h in heights)
    fig = Image.new("RGB", (PAD + n * (panel_width + PAD), height), BACKGROUND)
    draw = ImageDraw.Draw(fig)
    for j, label in enumerate(labels):
        _centre_text(draw, PAD + j * (panel_width + PAD), panel_width, PAD, label, font)
    top = PAD + th
    rects = []
    for c, row_h in zip(comps, heights, strict=True):
        ref = c.panels[-1].image
        _, H, W = ref.shape
        sx = panel_width / W
        view = _fit(_to_pil(ref), panel_width)
        fig.paste(view, (PAD, top))
        x, y, w, h = c.box
        _outline(draw, (PAD + round(x * sx), top + round(y * sx),
                        PAD + round((x + w) * sx) - 1, top + round((y + h) * sx) - 1))
        _centre_text(draw, PAD, panel_width, top + view.height + PAD // 2, c.name, font)
        row = {"full": (PAD, top, PAD + panel_width, top + view.height)}
        for j, panel in enumerate(c.panels, start=1):
            left = PAD + j * (panel_width + PAD)
            inset = _inset(_to_pil(panel.image), c.box, panel_width)
            fig.paste(inset, (left, top))
            row[f"inset{j}"] = (left, top, left + panel_width, top + inset.height)
            _centre_text(draw, left, panel_width, top + inset.height + PAD // 2,
                         panel.caption, font)
        rects.append(row)
        top += row_h + PAD
    return Figure(fig, rects)


def save_png(image: Image.Image, path: str | Path, overwrite: bool = False) -> Path:
    """Write a PNG atomically (temp file + rename); an existing file is replaced only with
    `overwrite` (else FileExistsError), so a figure never silently takes a photo's place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda fh: image.save(fh, format="PNG", optimize=True),
                        overwrite=overwrite)


def compare_images(
    images: Sequence[str | Path],
    models: Sequence[str | Path | Method],
    scale: int = 4,
    box: Box | None = None,
    box_size: int | None = None,
    panel_width: int = 256,
    grid: bool = False,
    input_is_lr: bool = False,
    device: str = "auto",
    precision: str = "fp32",
    tta: bool = False,
) -> list[Figure]:
    """A figure per image (or one grid figure for all, with `grid`). `bicubic` is always a
    column; `models` are names, .safetensors paths or `Method`s."""
    methods = load_methods(models, scale=scale, device=device, precision=precision, tta=tta)
    comps = [build_comparison(p, methods, scale, box, box_size, input_is_lr) for p in images]
    if grid:
        return [render_grid(comps, panel_width)]
    return [render_row(c, panel_width) for c in comps]
