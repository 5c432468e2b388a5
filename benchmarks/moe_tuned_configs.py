"""List the tuned Triton fused-MoE config files vLLM and SGLang ship for H100 SXM and H200, and check them against
costmodels/serving_moe_configs.py TUNED and the row blocks of costmodels/serving_moe_blocks.py BLOCKS.

    .venv/bin/python benchmarks/moe_tuned_configs.py [--wheels DIR] [--write-blocks]

Downloads the released wheels (pip download --no-deps, about 300 MB for vLLM) unless DIR already holds them,
reads their file listing (nothing is executed) and prints, per (engine, device profile, expert dtype), the
(E, N) of every config file: BF16 experts (no dtype in the name) and FP8 experts with 128x128 block scales
(vLLM: "fp8_block", SGLang: "fp8", its only FP8 kind). For the files of BLOCK_KINDS it also reads each file's
(token-count key, BLOCK_SIZE_M) pairs in file order, from the file the engine loads (SGLang: the newest Triton
version's folder holding the name, as get_moe_configs falls back newest-first; the installed Triton of SGLang 0.5.14,
torch 2.11's, is no older than any folder). Exit 1 when TUNED or BLOCKS differs from the wheels; --write-blocks
rewrites costmodels/serving_moe_blocks.py from them instead.
"""

import argparse
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import zipfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from costmodels.serving_moe_blocks import BLOCKS  # noqa: E402
from costmodels.serving_moe_configs import RELEASES, TUNED  # noqa: E402

BLOCKS_PATH = pathlib.Path(__file__).resolve().parents[1] / "costmodels" / "serving_moe_blocks.py"
BLOCK_KINDS = {("sglang", "fp8")}
"""(engine, expert dtype) whose files' BLOCK_SIZE_M the model reads (SGLang's block-FP8 files); the others' row
blocks stay fitted (moe_block_rows, moe_blockfp8_block_rows)"""
Blocks = dict[tuple[str, str, str, int, int], tuple[tuple[int, int], ...]]

CONFIG_DIRS = {"vllm": "vllm/model_executor/layers/fused_moe/configs/",
               "sglang": "sglang/srt/layers/moe/moe_runner/triton_utils/configs/"}
"""engine -> the wheel folder of its config files (SGLang: one subfolder per Triton version)"""
DEVICES = {"NVIDIA_H100_80GB_HBM3": "h100-sxm", "NVIDIA_H200": "h200"}
KINDS = {"vllm": {"": "bf16", ",dtype=fp8_w8a8,block_shape=[128,128]": "fp8_block"},
         "sglang": {"": "bf16", ",dtype=fp8_w8a8,block_shape=[128,128]": "fp8"}}
"""engine -> {file-name dtype suffix (spaces removed): the expert dtype the model uses it for}"""
NAME = re.compile(r"E=(\d+),N=(\d+),device_name=([^,]+?)((?:,dtype=[^,]+)?(?:,block_shape=\[\d+,\d+\])?)\.json")


def wheel(engine: str, folder: pathlib.Path) -> pathlib.Path:
    found = sorted(folder.glob(f"{engine}-{RELEASES[engine]}-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder),
                        f"{engine}=={RELEASES[engine]}"], check=True)
        found = sorted(folder.glob(f"{engine}-{RELEASES[engine]}-*.whl"))
    return found[0]


def _version(name: str) -> tuple[int, ...]:
    """The Triton version of an SGLang config path's triton_X_Y_Z folder (() for vLLM's single folder)."""
    folder = name.rsplit("/", 2)[-2]
    return tuple(int(x) for x in folder.removeprefix("triton_").split("_")) if folder.startswith("triton_") else ()


def listing(engine: str, path: pathlib.Path) -> tuple[dict[tuple[str, str, str], set[tuple[int, int]]], Blocks]:
    """The (E, N) of the engine's config files per (engine, device, dtype), and the BLOCK_KINDS files' row blocks."""
    out: dict[tuple[str, str, str], set[tuple[int, int]]] = {}
    newest: dict[tuple[str, str, str, int, int], tuple[tuple[int, ...], str]] = {}
    archive = zipfile.ZipFile(path)
    for name in archive.namelist():
        if not name.startswith(CONFIG_DIRS[engine]):
            continue
        m = NAME.fullmatch(name.rsplit("/", 1)[1].replace(" ", ""))
        if m and m.group(3) in DEVICES and m.group(4) in KINDS[engine]:
            key = (engine, DEVICES[m.group(3)], KINDS[engine][m.group(4)])
            out.setdefault(key, set()).add((int(m.group(1)), int(m.group(2))))
            shape = (*key, int(m.group(1)), int(m.group(2)))
            if (engine, key[2]) in BLOCK_KINDS and _version(name) >= newest.get(shape, ((), ""))[0]:
                newest[shape] = (_version(name), name)
    blocks = {shape: tuple((int(tokens), int(cfg["BLOCK_SIZE_M"]))  # vLLM's files: a "triton_version" key, dropped
                           for tokens, cfg in json.loads(archive.read(name)).items() if tokens != "triton_version")
              for shape, (_, name) in sorted(newest.items())}
    return out, blocks


def _wrapped(pairs: tuple[tuple[int, int], ...]) -> str:
    """The pairs as source lines of at most 120 characters, indented 8."""
    lines, line = [], ""
    for pair in pairs:
        if len(line) + len(repr(pair)) + 10 > 120:
            lines.append(line.rstrip())
            line = ""
        line += f"{pair!r}, "
    return "".join(f"        {text}\n" for text in [*lines, line.rstrip()])


def blocks_source(blocks: Blocks) -> str:
    """costmodels/serving_moe_blocks.py holding `blocks`."""
    rows = "".join(f"    {shape!r}: (\n{_wrapped(pairs)}    ),\n" for shape, pairs in sorted(blocks.items()))
    return (f'"""{BLOCKS_DOC}"""\n\nBLOCKS: dict[tuple[str, str, str, int, int], tuple[tuple[int, int], ...]] = {{\n'
            f"{rows}}}\n")


BLOCKS_DOC = """BLOCK_SIZE_M by token count of the tuned Triton fused-MoE config files the engines ship (generated by
benchmarks/moe_tuned_configs.py --write-blocks from the released wheels of serving_moe_configs.RELEASES; do not
edit by hand): (engine, device profile, expert dtype, E, N) -> the file's (token-count key, BLOCK_SIZE_M) pairs in
file order. The kernel takes the config of the key nearest the tokens entering the layer (serving_moe_configs.
file_block_rows). Only the files of moe_tuned_configs.BLOCK_KINDS are listed."""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheels", help="folder holding (or receiving) the wheels; default: a temporary folder")
    ap.add_argument("--write-blocks", action="store_true", help="rewrite costmodels/serving_moe_blocks.py")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(args.wheels or tmp)
        found: dict[tuple[str, str, str], set[tuple[int, int]]] = {}
        blocks: Blocks = {}
        for engine in RELEASES:
            shapes, rows = listing(engine, wheel(engine, folder))
            found.update(shapes)
            blocks.update(rows)
    for key, shapes in sorted(found.items()):
        print(key, sorted(shapes))
    differ = {k for k in set(found) | set(TUNED) if found.get(k, set()) != set(TUNED.get(k, ()))}
    print("TUNED matches the wheels" if not differ else f"TUNED differs for {sorted(differ)}")
    if args.write_blocks:
        BLOCKS_PATH.write_text(blocks_source(blocks))
        print(f"wrote {BLOCKS_PATH} ({len(blocks)} files)")
    elif blocks != BLOCKS:
        print(f"BLOCKS differs for {sorted(set(blocks.items()) ^ set(BLOCKS.items()))}")
        differ.add(("BLOCKS",))
    else:
        print("BLOCKS matches the wheels")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
