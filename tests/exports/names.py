"""The flag/key names an export emits, and the names each executor version accepts (../shared/executors/)."""

import json
import pathlib
import re
import shlex
import tomllib

import pytest

from planner.exports.common import TARGETS

EXECUTORS = pathlib.Path(__file__).resolve().parents[3] / "shared" / "executors"


def accepted(fmt: str) -> set[str]:
    """Names in the target's list; skips the test when ../shared is absent."""
    path = EXECUTORS / TARGETS[fmt].names_file
    if not path.is_file():
        pytest.skip(f"{path} is not present (../shared/executors is needed to check executor names)")
    return {line.split("\t")[0] for line in path.read_text().splitlines() if line and not line.startswith("#")}


def _key_paths(obj, prefix: str = "") -> set[str]:
    out = set()
    for key, value in obj.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out |= _key_paths(value, path + ".")
        else:
            out.add(path)
    return out


def megatron_names(text: str) -> set[str]:
    body = text.split("MEGATRON_ARGS=(\n", 1)[1].split("\n)", 1)[0]
    return {tok for line in body.splitlines() for tok in shlex.split(line) if tok.startswith("--")}


def toml_names(text: str) -> set[str]:
    return _key_paths(tomllib.loads(text))


def recipe_names(text: str) -> set[str]:
    return set(re.findall(r"^    config\.([a-z_.]+) = ", text, flags=re.M))


def deepspeed_names(text: str) -> set[str]:
    doc = json.loads(text)
    doc.pop("parplan")
    return _key_paths(doc)


def command_lines(text: str) -> list[list[str]]:
    """The shell commands of a serve export (comment lines dropped), split into words."""
    return [shlex.split(line) for line in text.splitlines() if line and not line.startswith("#")]


# Names the lists do not cover, with where the executor reads them (the lists are extracted from the files
# their headers name): vLLM's `serve` subcommand flag --headless (ServeSubcommand.cmd in
# vllm/entrypoints/cli/serve.py reads args.headless: worker nodes of multi-node TP/PP and DP run it).
UNLISTED = {"vllm": {"--headless"}}


def is_engine(words: list[str]) -> bool:
    return ("vllm" in words and "serve" in words) or "sglang.launch_server" in words \
        or "sglang_router.launch_router" in words


def serve_names(text: str) -> set[str]:
    """Flags of the engine commands, `router:` flags of SGLang's router, JSON sub-keys, environment variables."""
    names = set()
    for words in filter(is_engine, command_lines(text)):
        router = "sglang_router.launch_router" in words
        for i, word in enumerate(words):
            if re.fullmatch(r"[A-Z_]+=.*", word) and word.startswith(("VLLM_", "SGLANG_")):
                names.add("env:" + word.split("=", 1)[0])
            if word.startswith("--"):
                flag = word.split("=", 1)[0]
                names.add(("router:" if router else "") + flag)
                if flag == "--kv-transfer-config":
                    names |= {f"kv_transfer_config.{k}" for k in json.loads(words[i + 1])}
    return names
