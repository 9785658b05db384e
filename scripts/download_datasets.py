"""Download and extract the DAVIS and YouTube-VOS datasets (and BL30K on request) into the layout QDMN expects.

    python -m scripts.download_datasets [--out data] [--only davis2017,davis2016,youtube2019,youtube2018]
                                        [--base_url https://mirror.example.org] [--no_extract] [--bl30k]

Resulting layout (as STCN/QDMN use it)::

    data/DAVIS/2016                        DAVIS-data.zip (DAVIS 2016, 480p and 1080p)
    data/DAVIS/2017/trainval               DAVIS-2017-trainval-480p.zip
    data/DAVIS/2017/test-dev               DAVIS-2017-test-dev-480p.zip
    data/YouTube/{train,valid}             YouTube-VOS 2019 (train is resized into train_480p)
    data/YouTube/all_frames/valid_all_frames
    data/YouTube2018/valid, data/YouTube2018/all_frames/valid_all_frames
    data/BL30K                             only with --bl30k (~700 GB)

Archives are kept in ``OUT/downloads`` (downloads resume; a finished archive is not fetched
again) and checked against the checksums of the table below where they are known; a
marker file records a finished extraction so that a second run does nothing. Archives are
extracted by :func:`util.download.safe_extract`, which refuses members outside the
target. ``--base_url`` replaces the scheme and host of every URL (mirrors, tests); files
that only exist on Google Drive are then fetched as ``BASE_URL/<file name>``.

Please read and respect the datasets' licences (https://davischallenge.org,
https://youtube-vos.org) and cite the original papers. Exit status 2 on error.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from util import write_gate
from util.download import download, gdrive_download, md5sum, safe_extract
from util.errors import UserError, exit_on_user_error


@dataclass(frozen=True)
class Archive:
    """One archive of the table.

    ``target`` is the folder (relative to ``--out``) that receives the content. With
    ``inner`` set, the archive's top folder ``inner`` *becomes* ``target`` (the DAVIS zips
    all hold a single ``DAVIS/`` folder); without it the archive is extracted into ``target``.
    """

    name: str
    url: str | None
    md5: str | None
    target: str
    inner: str | None = None
    group: str = ""
    gdrive_id: str | None = None
    filename: str | None = None
    sha256: str | None = None
    size: str = ""
    manual: str = ""

    @property
    def file_name(self) -> str:
        if self.filename:
            return self.filename
        if self.url:
            return PurePosixPath(urlsplit(self.url).path).name
        return f"{self.name}.zip"


DAVIS_2017 = "https://data.vision.ee.ethz.ch/csergi/share/davis"
YOUTUBE_HELP = "YouTube-VOS is also on https://youtube-vos.org (CodaLab, registration needed)"
BL30K_HELP = (
    "BL30K is no longer on Google Drive: download BL30K_a.tar ... BL30K_f.tar from "
    "https://doi.org/10.13012/B2IDB-1702934_V1 into {downloads} and run again with --bl30k "
    "(or pass --base_url of a mirror that holds them)"
)

# Checksums: None where no trustworthy value is known; the computed md5 is printed after the
# download so that it can be recorded here. Google Drive ids: the STCN/MiVOS mirrors (hkchengrex).
# DAVIS-data.zip: public scripts quote two different md5s for the same URL
# (0cb3cf9c5617209fa3cc4794e52a2ffa, 464ebb594dcbc34e012487f4cd0f8213), so none is used.
# DAVIS-2017-trainval-480p.zip: sha256 as recorded by third-party code that pins this URL.
TABLE: tuple[Archive, ...] = (
    Archive("davis2016", "https://graphics.ethz.ch/Downloads/Data/Davis/DAVIS-data.zip", None, "DAVIS/2016",
            inner="DAVIS", gdrive_id="198aRlh5CpAoFz0hfRgYbiNenn_K8DxWD", size="1.9 GB"),
    Archive("davis2017_trainval", f"{DAVIS_2017}/DAVIS-2017-trainval-480p.zip", None, "DAVIS/2017/trainval",
            inner="DAVIS", group="davis2017", gdrive_id="1kiaxrX_4GuW6NmiVuKGSGVoKGWjOdp6d",
            sha256="e3d0b5b77c3d031b000a19e0e25e3e2cac65d183755601bc2cf066df1a2aa492", size="0.8 GB"),
    Archive("davis2017_testdev", f"{DAVIS_2017}/DAVIS-2017-test-dev-480p.zip", None, "DAVIS/2017/test-dev",
            inner="DAVIS", group="davis2017", gdrive_id="1fmkxU2v9cQwyb62Tj1xFDdh2p4kDsUzD", size="0.3 GB"),
    Archive("youtube2019_train", None, None, "YouTube", group="youtube2019", filename="YouTubeVOS-2019-train.zip",
            gdrive_id="13Eqw0gVK-AO5B-cqvJ203mZ2vzWck9s4", size="~20 GB", manual=YOUTUBE_HELP),
    Archive("youtube2019_valid", None, None, "YouTube", group="youtube2019", filename="YouTubeVOS-2019-valid.zip",
            gdrive_id="1o586Wjya-f2ohxYf9C1RlRH-gkrzGS8t", manual=YOUTUBE_HELP),
    Archive("youtube2019_valid_all_frames", None, None, "YouTube/all_frames", group="youtube2019",
            filename="YouTubeVOS-2019-valid_all_frames.zip", gdrive_id="1rWQzZcMskgpEQOZdJPJ7eTmLCBEIIpEN", manual=YOUTUBE_HELP),
    Archive("youtube2018_valid", None, None, "YouTube2018", group="youtube2018", filename="YouTubeVOS-2018-valid.zip",
            gdrive_id="1-QrceIl5sUNTKz7Iq0UsWC6NLZq7girr", manual=YOUTUBE_HELP),
    Archive("youtube2018_valid_all_frames", None, None, "YouTube2018/all_frames", group="youtube2018",
            filename="YouTubeVOS-2018-valid_all_frames.zip", gdrive_id="1yVoHM6zgdcL348cFpolFcEl4IC1gorbV", manual=YOUTUBE_HELP),
    *(
        Archive(f"bl30k_{part}", None, None, "BL30K", group="bl30k", filename=f"BL30K_{part}.tar", size="~115 GB",
                manual=BL30K_HELP)
        for part in "abcdef"
    ),
)
BIG_GROUPS = {"bl30k"}
RESIZE_AFTER = {"youtube2019_train": ("YouTube/train", "YouTube/train_480p")}


# ----------------------------------------------------------------------------- selection


def select(table: Sequence[Archive], only: Sequence[str] | None, bl30k: bool) -> list[Archive]:
    """The entries named (by entry name or group) in ``only`` (all by default); BL30K only with ``bl30k``."""
    keys = {k for a in table for k in (a.name, a.group or a.name)}
    wanted = {w.strip().lower() for w in only or () if w.strip()}
    unknown = sorted(wanted - keys)
    if unknown:
        raise UserError(f"--only {','.join(unknown)}: unknown; choose from {','.join(sorted(keys))}")
    chosen = [a for a in table if not wanted or a.name in wanted or (a.group or a.name) in wanted]
    big = [a for a in chosen if (a.group or a.name) in BIG_GROUPS]
    if big and not bl30k:
        if wanted & ({a.name for a in big} | {a.group for a in big}):
            raise UserError("BL30K is about 700 GB (1 TB free disk needed while extracting): add --bl30k to confirm")
        chosen = [a for a in chosen if a not in big]
    return chosen


def rebase(url: str | None, filename: str, base_url: str) -> str:
    """``url`` with its scheme and host replaced by ``base_url`` (whose path is kept as a prefix)."""
    path = urlsplit(url).path if url else "/" + filename
    return base_url.rstrip("/") + path


# ----------------------------------------------------------------------------- download


def fetch(entry: Archive, downloads: Path, base_url: str | None, verify: bool, progress: bool) -> Path | None:
    """Download one archive into ``downloads``; None (with instructions printed) when it has no source."""
    dest = downloads / entry.file_name
    md5, sha256 = (entry.md5, entry.sha256) if verify else (None, None)
    if base_url:
        return download(rebase(entry.url, entry.file_name, base_url), dest, md5=md5, sha256=sha256, progress=progress)
    if entry.url:
        try:
            return download(entry.url, dest, md5=md5, sha256=sha256, progress=progress)
        except UserError as e:
            if not entry.gdrive_id:
                raise
            print(f"warning: {e}; trying the Google Drive mirror", file=sys.stderr)
    if entry.gdrive_id:
        try:
            return gdrive_download(entry.gdrive_id, dest, md5=md5, sha256=sha256, progress=progress)
        except UserError as e:
            raise UserError(f"{e}{'; ' + entry.manual if entry.manual else ''}") from None
    if dest.is_file():
        return dest
    print(f"{entry.name}: cannot be downloaded automatically. {entry.manual.format(downloads=downloads)}", file=sys.stderr)
    return None


def report_checksum(entry: Archive, archive: Path, verify: bool) -> None:
    if verify and (entry.md5 or entry.sha256):
        print(f"{archive.name}: checksum verified")
    else:
        print(f"{archive.name}: md5 {md5sum(archive)} (not verified: no checksum known; record it in the table)")


# ----------------------------------------------------------------------------- extraction


def _marker(archive: Path) -> Path:
    return archive.with_name(archive.name + ".extracted")


def extract(entry: Archive, archive: Path, out: Path) -> bool:
    """Extract ``archive`` into ``out/entry.target``; False when it was already extracted."""
    target = out / entry.target
    marker = _marker(archive)
    if marker.is_file():
        print(f"{archive.name}: already extracted into {target}")
        return False
    if entry.inner is None:
        safe_extract(archive, target)
    elif target.exists():
        print(f"warning: {target} already exists; {archive.name} was not extracted (delete {target} to extract it again)",
              file=sys.stderr)
        return False
    else:
        _extract_renaming(entry, archive, target)
    write_gate.write_text(marker, f"{target}\n", "--out")
    print(f"{archive.name}: extracted into {target}")
    return True


def _extract_renaming(entry: Archive, archive: Path, target: Path) -> None:
    """Extract into a staging folder next to ``target``, then rename its ``inner`` folder to ``target``."""
    staging = target.parent / f".staging-{entry.name}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        safe_extract(archive, staging)
        inner = staging / entry.inner
        if not inner.is_dir():
            found = ", ".join(sorted(p.name for p in staging.iterdir())) or "nothing"
            raise UserError(f"{archive}: expected a top folder {entry.inner!r} in the archive, found {found}; is it the right file?")
        target.parent.mkdir(parents=True, exist_ok=True)
        inner.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def resize_youtube(out: Path, entry: Archive) -> None:
    """Make ``YouTube/train_480p`` from the extracted ``YouTube/train`` (skips videos already done)."""
    from datasets.resize import resize_all

    src, dst = (out / p for p in RESIZE_AFTER[entry.name])
    print(f"Resizing {src} into {dst} (shorter side 480 px)...")
    resize_all(src, dst)


# ----------------------------------------------------------------------------- main logic


def run(
    table: Sequence[Archive],
    out: str | Path,
    only: Sequence[str] | None = None,
    base_url: str | None = None,
    extract_archives: bool = True,
    verify: bool = True,
    bl30k: bool = False,
    resize: bool = True,
    progress: bool = True,
) -> list[str]:
    """Download (and extract) the selected entries of ``table`` under ``out``; returns the names not available."""
    out = Path(out)
    chosen = select(table, only, bl30k)
    if bl30k and any((a.group or a.name) in BIG_GROUPS for a in chosen):
        print("warning: BL30K is about 700 GB; about 1 TB of free disk is needed while extracting", file=sys.stderr)
    downloads = out / "downloads"
    missing = []
    for entry in chosen:
        print(f"== {entry.name}{f' ({entry.size})' if entry.size else ''}")
        archive = fetch(entry, downloads, base_url, verify, progress)
        if archive is None:
            missing.append(entry.name)
            continue
        report_checksum(entry, archive, verify)
        if extract_archives:
            extract(entry, archive, out)
            if resize and entry.name in RESIZE_AFTER:
                resize_youtube(out, entry)
    return missing


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path("data"), help="data root (default: data)")
    parser.add_argument("--only", default=None, help="comma-separated groups or entries, e.g. davis2017 (default: all but BL30K)")
    parser.add_argument("--base_url", default=None, help="mirror: replaces scheme and host of every URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--no_extract", action="store_true", help="download (and verify) only")
    parser.add_argument("--no_verify", action="store_true", help="skip checksum checks")
    parser.add_argument("--no_resize", action="store_true", help="do not make YouTube/train_480p after extracting YouTube train")
    parser.add_argument("--bl30k", action="store_true", help="also download BL30K (~700 GB)")
    parser.add_argument("--list", action="store_true", help="print the table and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def print_table(table: Sequence[Archive]) -> None:
    for a in table:
        source = a.url or (f"gdrive:{a.gdrive_id}" if a.gdrive_id else "manual")
        checksum = "md5" if a.md5 else "sha256" if a.sha256 else "-"
        print(f"{a.name:30s} {a.group or a.name:12s} {a.target:28s} {checksum:6s} {source}")


@exit_on_user_error
def main(argv: list[str] | None = None, table: Sequence[Archive] = TABLE) -> None:
    args = parse_args(argv)
    if args.list:
        print_table(table)
        return
    if args.base_url and not args.base_url.lower().startswith(("http://", "https://")):
        raise UserError(f"--base_url {args.base_url}: must start with http:// or https://")
    only = args.only.split(",") if args.only else None
    missing = run(table, args.out, only, args.base_url, not args.no_extract, not args.no_verify, args.bl30k,
                  not args.no_resize, not args.quiet)
    if missing:
        print(f"Not downloaded (see the instructions above): {', '.join(missing)}", file=sys.stderr)
    print("Done.")


if __name__ == "__main__":
    main(sys.argv[1:])
