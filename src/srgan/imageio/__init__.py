"""Image files <-> `ImageData` (float32 pixels in [0, 1]) or `QuantizedImage` (the stored
integers), with the metadata worth keeping. Knows nothing about torch.

One module per job; every public name is re-exported here:

* `errors`: ImageReadError / ImageWriteError (str() is "<file>: <reason>"), ImageWarning,
  TooManyPixels, and printable file names;
* `types`: the image dataclasses, `from_array` / `to_array`, `to_float` / `quantize`;
* `metadata`: EXIF orientation and ICC profiles;
* `pil`: PIL images <-> integers (`from_pil`, `to_pil`);
* `read`: from paths, binary file objects or bytes (`read_image`, `read_quantized`,
  `read_bytes`, `read_rgb8`), and `probe_size`, the header-only size check;
* `png`: the PNG chunk scanner, the 16-bit colour decoder and the block-parallel encoder;
* `write`: to paths, atomically (`write_image`), or to bytes (`encode`);
* `find`: the folder walk (`find_images`, or `find_files` for other extensions);
* `mark`: the mark every written file carries, to know our own outputs (`has_mark`).
"""

from srgan.imageio.errors import (
    ImageFileError,
    ImageReadError,
    ImageWarning,
    ImageWriteError,
    TooManyPixels,
    display_path,
    display_text,
)
from srgan.imageio.find import IMAGE_EXTENSIONS, find_files, find_images
from srgan.imageio.mark import MARK, has_mark
from srgan.imageio.pil import from_pil, to_pil
from srgan.imageio.png import PNG_THREADS
from srgan.imageio.read import (
    FILE_MAX_PIXELS,
    MAX_PIXELS_ENV,
    READ_FORMATS,
    probe_size,
    read_bytes,
    read_image,
    read_quantized,
    read_rgb8,
    resolve_max_pixels,
)
from srgan.imageio.types import (
    ImageData,
    QuantizedImage,
    from_array,
    quantize,
    to_array,
    to_float,
)
from srgan.imageio.write import WRITE_EXTENSIONS, check_writable_size, encode, write_image

__all__ = [
    "FILE_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "MARK",
    "MAX_PIXELS_ENV",
    "PNG_THREADS",
    "READ_FORMATS",
    "WRITE_EXTENSIONS",
    "ImageData",
    "ImageFileError",
    "ImageReadError",
    "ImageWarning",
    "ImageWriteError",
    "QuantizedImage",
    "TooManyPixels",
    "check_writable_size",
    "display_path",
    "display_text",
    "encode",
    "find_files",
    "find_images",
    "from_array",
    "from_pil",
    "has_mark",
    "probe_size",
    "quantize",
    "read_bytes",
    "read_image",
    "read_quantized",
    "read_rgb8",
    "resolve_max_pixels",
    "to_array",
    "to_float",
    "to_pil",
    "write_image",
]
