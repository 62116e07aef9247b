#!/usr/bin/env python3
"""Builds a small bilingual corpus in RedPajama's layout from Debian's fortune files.

English comes from the `fortunes` package (quotes, literature, science, computers, ...);
Chinese from `fortunes-zh` (Tang and Song poetry, Chinese sayings). Each record is one
fortune: {"text": ..., "meta": {"source": "fortunes/<file>", "language": "en"|"zh"}}.
The output is deterministic for a given package version (files in a fixed order,
entries in file order, colour escapes and overstrikes removed).

    python3 scripts/make_sample_corpus.py --output data/sample [--compress]

writes en.jsonl and zh.jsonl (and, with --compress, .jsonl.gz and .jsonl.zst copies;
the .zst copy needs the zstd command). Standard library only.
"""
import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys

FORTUNE_DIR = "/usr/share/games/fortunes"
EN_FILES = [
    "fortunes", "literature", "wisdom", "science", "computers", "people", "humorists", "work",
    "education", "food", "love", "pets", "platitudes", "politics", "riddles", "songs-poems",
    "sports", "magic", "medicine", "law", "linux", "miscellaneous", "news", "paradoxum",
    "pratchett", "goedel", "kids", "definitions", "drugs", "men-women", "startrek", "tao",
    "zippy", "debian", "cookie", "disclaimer", "knghtbrd", "linuxcookie", "perl",
]
ZH_FILES = ["tang300", "song100", "chinese"]

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
OVERSTRIKE = re.compile(r".\x08")


def read_fortunes(path):
    with open(path, "rb") as f:
        raw = f.read()
    entries = re.split(rb"\n%\n", raw.replace(b"\r\n", b"\n"))
    out = []
    for e in entries:
        try:
            text = e.decode("utf-8")
        except UnicodeDecodeError:
            continue  # a few old entries are Latin-1; the sample needs valid UTF-8 only
        text = OVERSTRIKE.sub("", ANSI.sub("", text))
        text = "\n".join(line.rstrip() for line in text.strip("\n%").split("\n")).strip()
        if text:
            out.append(text)
    return out


def write_language(out_dir, lang, files, max_docs):
    records = []
    for name in files:
        path = os.path.join(FORTUNE_DIR, name)
        if not os.path.isfile(path):
            continue
        for text in read_fortunes(path):
            records.append({"text": text, "meta": {"source": "fortunes/" + name, "language": lang}})
    if not records:
        pkg = "fortunes" if lang == "en" else "fortunes-zh"
        sys.exit(f"make_sample_corpus: no {lang} fortunes under {FORTUNE_DIR}; install the Debian package {pkg}")
    if max_docs > 0:
        records = records[:max_docs]
    path = os.path.join(out_dir, lang + ".jsonl")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path, len(records)


def compress(path):
    with open(path, "rb") as f:
        data = f.read()
    # mtime=0 and no file name keep the .gz byte-identical across runs.
    with open(path + ".gz", "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(data)
    if shutil.which("zstd"):
        subprocess.run(["zstd", "-q", "-f", "-19", path, "-o", path + ".zst"], check=True)
    else:
        print("make_sample_corpus: zstd not found; skipped the .zst copy", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--output", "-o", required=True, help="output directory")
    ap.add_argument("--max-docs", type=int, default=0, help="keep at most this many documents per language (0 = all)")
    ap.add_argument("--compress", action="store_true", help="also write .jsonl.gz and .jsonl.zst copies")
    args = ap.parse_args()
    os.makedirs(args.output, exist_ok=True)
    for lang, files in (("en", EN_FILES), ("zh", ZH_FILES)):
        path, n = write_language(args.output, lang, files, args.max_docs)
        if args.compress:
            compress(path)
        print(f"{path}: {n} documents, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
