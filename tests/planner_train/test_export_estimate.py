"""`parplan export` on an estimate of a train configuration exports that configuration."""

from click.testing import CliRunner

from cli import main


def test_export_estimate_uses_its_configuration_and_even_split(tmp_path):
    out = tmp_path / "est.json"
    runner = CliRunner()
    args = ["estimate", "train", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "16", "--tp", "2",
            "--pp", "4", "--mbs", "1", "--gbs", "64", "--seq", "4096", "--recompute", "full", "-o", str(out)]
    assert runner.invoke(main, args).exit_code == 0
    result = runner.invoke(main, ["export", str(out), "--format", "megatron"])
    assert result.exit_code == 0, result.output
    flags = result.output.split()
    assert flags[flags.index("--tensor-model-parallel-size") + 1] == "2"
    assert flags[flags.index("--pipeline-model-parallel-size") + 1] == "4"
    assert flags[flags.index("--global-batch-size") + 1] == "64"
    assert "--recompute-granularity" in flags
    # 32 layers over 4 stages split evenly: no uneven-split flags
    assert "--decoder-first-pipeline-num-layers" not in flags
    assert "--pipeline-model-parallel-layout" not in flags
