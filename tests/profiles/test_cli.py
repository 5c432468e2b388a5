"""`parplan profiles list` and `parplan profiles show` through the real CLI entry point."""

import json

from click.testing import CliRunner

import profiles
from cli import main


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_list_prints_every_profile():
    result = run("profiles", "list")
    assert result.exit_code == 0
    for names in profiles.list_profiles().values():
        for name in names:
            assert f"  {name}\n" in result.output


def test_list_json_equals_the_api():
    result = run("profiles", "list", "--json")
    assert result.exit_code == 0 and json.loads(result.output) == profiles.list_profiles()


def test_show_hardware_with_units():
    result = run("profiles", "show", "h100-sxm")
    assert result.exit_code == 0
    assert "989.4 TFLOP/s" in result.output and "3.35 TB/s" in result.output
    assert "450 GB/s per device, per direction" in result.output and "calibration" in result.output


def test_show_model_and_cluster():
    result = run("profiles", "show", "deepseek-v3")
    assert result.exit_code == 0 and "256 experts, top-8" in result.output and "671.03e9 total" in result.output
    result = run("profiles", "show", "h100x16-a100x16")
    assert result.exit_code == 0 and "32 in 2 pool(s)" in result.output


def test_show_json_equals_the_api():
    result = run("profiles", "show", "llama3-70b", "--json")
    assert result.exit_code == 0 and json.loads(result.output) == json.loads(
        json.dumps(profiles.show_profile("llama3-70b")))


def test_unknown_profile_exits_2_listing_valid_names_without_traceback():
    result = run("profiles", "show", "h1000")
    assert result.exit_code == 2
    assert "unknown profile 'h1000'" in result.output and "h100-sxm" in result.output and "llama3-70b" in result.output
    assert "Traceback" not in result.output
