"""Set5 and Set14, the standard x4 benchmark sets, from a public mirror, accepted only when
every image is byte for byte the one this project's tables were measured on.

The mirror is the Hugging Face dataset repositories eugenesiow/Set5 and eugenesiow/Set14
(the sets of the super-image library): each has `data/<Set>_HR.tar.gz`, fetched as
`https://huggingface.co/datasets/eugenesiow/<Set>/resolve/main/data/<Set>_HR.tar.gz`, and
the archive holds `<Set>_HR/<name>.png` under the sets' usual names (baby.png ... woman.png;
baboon.png ... zebra.png), so no renaming is needed. That layout is the one the deepinv
library's Set5HR and Set14HR datasets (deepinv/datasets/set5.py, set14.py) download and
extract; the MD5 they record for the extracted `Set5_HR` and `Set14_HR` folders (the MD5 of
the files' MD5s in name order) is the one of the images below.

The archives' own checksums are not known here, so each extracted image is checked instead:
the SHA-256 digests below are those of the HR images every table of this project was scored
on (Set14 at its original, not mod-cropped sizes; its bridge.png is grey).
"""

from __future__ import annotations

import hashlib
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from srgan.atomic import atomic_write
from srgan.datasets.download import DownloadError, download, set_aside, sha256_of

MIRROR = "https://huggingface.co/datasets/eugenesiow/{name}/resolve/main/data/"


@dataclass(frozen=True)
class StandardSet:
    name: str  # the folder it is written to: TARGET/Set5
    archive: str  # the file fetched from the base URL
    base_url: str  # the mirror's folder that holds `archive`
    images: dict[str, str] = field(default_factory=dict)  # file name -> SHA-256


STANDARD_SET_ARCHIVES: dict[str, StandardSet] = {
    "set5": StandardSet("Set5", "Set5_HR.tar.gz", MIRROR.format(name="Set5"), {
        "baby.png": "cb85956d68f708a1030c790d143cbcd108f5ac5988d3349180cdcb54dd80597d",
        "bird.png": "5dcf863f7c3802e68fbb0fca2ec351052a1f97a4db613e510dbd105cee9a6a32",
        "butterfly.png": "487d841c9dbc46c7ab496c319ec1f13268de7ea7e02f94ae18781ca86a5abd0d",
        "head.png": "f524c1ce41641c1cf269a20c4dfbe965e07e471d609abc19dfadfb71037cc873",
        "woman.png": "f276625a222b9ce18d18d86e1ec603fea50427b7c0a2927b3750b1bb86a07b83",
    }),
    "set14": StandardSet("Set14", "Set14_HR.tar.gz", MIRROR.format(name="Set14"), {
        "baboon.png": "bf6fb300762bcbe1340098b4309c179b2007c3bb81b7afde18c38a3ae70ac8a9",
        "barbara.png": "1ea77fe82564b55230d7c2439bef5738d18a4624280e263be48484c002b6280b",
        "bridge.png": "c0eb089ad3dacfa96ee79d9c112216265b36aaba205e06f80846b03b21884a53",
        "coastguard.png": "fc6c2acd5ca2116f37b1b38c0c2908ce64e2e414086fb43349c246d410669da6",
        "comic.png": "49ccc5e33deff33992b929b07549d803f176e01bf9f41b73de6b15437bc2280d",
        "face.png": "5cc7a1c5c013b46a7ab4850cb709974d26971550106375a36fd641c725bce9aa",
        "flowers.png": "609e9fc9ffd6c9689c6200a11e057c19e6e4ec5d385fe0d6eb59a7b24f327894",
        "foreman.png": "af4ad4771fd2def0a09ba0011e67225f10ad1590e85b48aab4f6820fa932b1ed",
        "lenna.png": "72d70a7a5051c6193f02b03decb6c7b1d336abe2d024f441a2384acaee84af55",
        "man.png": "ba7a7e45f690a542fc32fdefe1e04e0128d1cdf8c3817c1ee7b0300961636bfe",
        "monarch.png": "ed96187293a37c931250d137553928e1a9a63e31296b82a4968dde63683bb101",
        "pepper.png": "46339a09e2ae31d2f0513642607586a00d82feaf48dc3cc770e42be5684a11a9",
        "ppt3.png": "a9276fa3f7fbd4257ccede14d1004f836c10fcc2bac174b2428f43fe899b8f9d",
        "zebra.png": "af146347f19b1ab9f1da26113a88505d600e2dcb84bf91bb8e2013691e79bcc7",
    }),
}


def _existing(folder: Path, spec: StandardSet) -> set[str]:
    """The set's images already in `folder`, right ones only; raises for one that is there
    but is not the image (a copy of one's own, mod-cropped say): it is never replaced."""
    found = set()
    for name, digest in spec.images.items():
        path = folder / name
        if not path.exists():
            continue
        actual = sha256_of(path)
        if actual != digest:
            raise DownloadError(
                f"{path} is there and is not {spec.name}'s {name} (SHA-256 {actual}, expected "
                f"{digest}); srgan does not replace it: move it away, or download into "
                "another folder")
        found.add(name)
    return found


def _verified_images(archive: Path, spec: StandardSet) -> dict[str, bytes]:
    """The set's images read from `archive` (matched by file name, wherever they sit in it),
    each checked against its SHA-256. Nothing is written: only these bytes ever are, under
    the table's own names, so a member's path cannot lead outside the target."""
    images: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = PurePosixPath(member.name).name
                if not member.isfile() or name not in spec.images:
                    continue
                payload = tar.extractfile(member).read()  # type: ignore[union-attr]
                digest = hashlib.sha256(payload).hexdigest()
                if digest != spec.images[name]:
                    raise DownloadError(
                        f"{archive}: {member.name} is not {spec.name}'s {name} (SHA-256 "
                        f"{digest}, expected {spec.images[name]})")
                images[name] = payload
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DownloadError(f"{archive}: not a readable tar archive ({exc})") from exc
    missing = sorted(set(spec.images) - set(images))
    if missing:
        raise DownloadError(f"{archive}: {', '.join(missing)} not in it")
    return images


def download_standard_set(
    key: str,
    target: str | Path,
    base_url: str | None = None,
    keep_archives: bool = True,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Fetch Set5 or Set14 (`key` "set5", "set14") into `target`/Set5 and return that folder.

    The archive goes to `target`/downloads and is kept unless `keep_archives` is False. An
    archive whose images are not exactly the expected ones is renamed aside (kept, never
    deleted) and the error names the file that differs; nothing is written then. A folder
    that holds the whole set already is left as it is, without a request.
    """
    spec = STANDARD_SET_ARCHIVES[key]
    target = Path(target)
    folder = target / spec.name
    have = _existing(folder, spec)
    if have == set(spec.images):
        log(f"{folder}: already there")
        return folder
    base = base_url or spec.base_url
    base = base if base.endswith("/") else base + "/"
    archive = download(base + spec.archive, target / "downloads" / spec.archive,
                       progress=progress, log=log)
    try:
        images = _verified_images(archive, spec)
    except DownloadError as exc:
        aside = set_aside(archive)
        raise DownloadError(
            f"{exc}: not the {spec.name} images srgan scores against, so nothing was written; "
            f"the archive is kept as {aside}. Run the command again to download it anew, or "
            "use another mirror with --base-url (docs/faq.md)") from None
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(set(images) - _existing(folder, spec)):
        atomic_write(folder / name, lambda f, data=images[name]: f.write(data), overwrite=False)
    if not keep_archives:
        archive.unlink()
    return folder
