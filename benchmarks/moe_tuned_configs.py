"""List the tuned Triton fused-MoE config files vLLM and SGLang ship for H100 SXM and H200, and check them against
costmodels/serving_moe_configs.py TUNED.

    .venv/bin/python benchmarks/moe_tuned_configs.py [--wheels DIR]

Downloads the released wheels (pip download --no-deps, about 300 MB for vLLM) unless DIR already holds them,
reads their file listing (nothing is executed) and prints, per (engine, device profile, expert dtype), the
(E, N) of every config file: BF16 experts (no dtype in the name) and FP8 experts with 128x128 block scales
(vLLM: "fp8_block", SGLang: "fp8", its only FP8 kind). Exit 1 when TUNED differs from the listing.
"""

import argparse
import pathlib
import re
import subprocess
import sys
import tempfile
import zipfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from costmodels.serving_moe_configs import RELEASES, TUNED  # noqa: E402

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


def listing(engine: str, path: pathlib.Path) -> dict[tuple[str, str, str], set[tuple[int, int]]]:
    out: dict[tuple[str, str, str], set[tuple[int, int]]] = {}
    for name in zipfile.ZipFile(path).namelist():
        if not name.startswith(CONFIG_DIRS[engine]):
            continue
        m = NAME.fullmatch(name.rsplit("/", 1)[1].replace(" ", ""))
        if m and m.group(3) in DEVICES and m.group(4) in KINDS[engine]:
            key = (engine, DEVICES[m.group(3)], KINDS[engine][m.group(4)])
            out.setdefault(key, set()).add((int(m.group(1)), int(m.group(2))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheels", help="folder holding (or receiving) the wheels; default: a temporary folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(args.wheels or tmp)
        found: dict[tuple[str, str, str], set[tuple[int, int]]] = {}
        for engine in RELEASES:
            found.update(listing(engine, wheel(engine, folder)))
    for key, shapes in sorted(found.items()):
        print(key, sorted(shapes))
    differ = {k for k in set(found) | set(TUNED) if found.get(k, set()) != set(TUNED.get(k, ()))}
    print("TUNED matches the wheels" if not differ else f"TUNED differs for {sorted(differ)}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
