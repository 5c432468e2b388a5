"""Medians of the measured prefill and per-token decode times in Splitwise's profiled performance table
(Patel et al., "Splitwise", ISCA'24; repository Mutinifni/splitwise-sim, data/perf_model.csv, MIT licence),
derived by hand (median of the 5 samples per configuration; output length 128 rows; batch-64 rows of
tp=2 are dropped: their prompt times are inconsistent with batch 32). Columns: model, gpu, tp, prompt_len,
batch, prefill_ms, decode_ms. Used to fit and check the serving calibration across GPUs, TP degrees and models.
"""

ROWS = """
llama2-70b h100-sxm 2 128 1 48.3 37.2
llama2-70b h100-sxm 2 256 1 51.8 37.8
llama2-70b h100-sxm 2 512 1 83.8 37.0
llama2-70b h100-sxm 2 1024 1 158.0 37.4
llama2-70b h100-sxm 2 2048 1 310.0 37.4
llama2-70b h100-sxm 2 4096 1 642.0 37.5
llama2-70b h100-sxm 2 8192 1 1339.0 37.8
llama2-70b h100-sxm 2 512 2 155.8 37.4
llama2-70b h100-sxm 2 512 4 299.8 40.0
llama2-70b h100-sxm 2 512 8 606.0 40.4
llama2-70b h100-sxm 2 512 16 1190.0 42.0
llama2-70b h100-sxm 2 512 32 2397.0 52.3
llama2-70b h100-sxm 4 128 1 49.1 28.4
llama2-70b h100-sxm 4 256 1 51.0 30.0
llama2-70b h100-sxm 4 512 1 59.6 29.7
llama2-70b h100-sxm 4 1024 1 105.6 29.4
llama2-70b h100-sxm 4 2048 1 200.7 29.8
llama2-70b h100-sxm 4 4096 1 463.5 29.6
llama2-70b h100-sxm 4 8192 1 953.6 29.7
llama2-70b h100-sxm 4 512 2 103.6 30.0
llama2-70b h100-sxm 4 512 4 195.3 30.0
llama2-70b h100-sxm 4 512 8 442.2 31.4
llama2-70b h100-sxm 4 512 16 874.0 33.0
llama2-70b h100-sxm 4 512 32 1726.0 36.9
llama2-70b h100-sxm 4 512 64 3520.0 52.0
llama2-70b h100-sxm 8 128 1 58.2 29.9
llama2-70b h100-sxm 8 256 1 51.7 28.3
llama2-70b h100-sxm 8 512 1 53.4 29.8
llama2-70b h100-sxm 8 1024 1 77.9 29.7
llama2-70b h100-sxm 8 2048 1 136.8 31.0
llama2-70b h100-sxm 8 4096 1 390.3 30.6
llama2-70b h100-sxm 8 8192 1 844.9 31.4
llama2-70b h100-sxm 8 512 2 76.9 30.3
llama2-70b h100-sxm 8 512 4 132.6 31.8
llama2-70b h100-sxm 8 512 8 371.6 32.5
llama2-70b h100-sxm 8 512 16 811.9 34.2
llama2-70b h100-sxm 8 512 32 1551.7 38.6
llama2-70b h100-sxm 8 512 64 2936.3 50.2
llama2-70b a100-80gb 2 128 1 81.1 53.7
llama2-70b a100-80gb 2 256 1 112.9 54.1
llama2-70b a100-80gb 2 512 1 196.3 54.9
llama2-70b a100-80gb 2 1024 1 377.1 54.8
llama2-70b a100-80gb 2 2048 1 688.0 54.9
llama2-70b a100-80gb 2 4096 1 1486.0 55.8
llama2-70b a100-80gb 2 8192 1 2990.0 57.3
llama2-70b a100-80gb 2 512 2 416.5 59.9
llama2-70b a100-80gb 2 512 4 845.4 60.5
llama2-70b a100-80gb 2 512 8 1597.0 61.7
llama2-70b a100-80gb 2 512 16 3238.0 65.5
llama2-70b a100-80gb 2 512 32 6620.0 72.2
llama2-70b a100-80gb 4 128 1 63.7 42.4
llama2-70b a100-80gb 4 256 1 78.6 42.2
llama2-70b a100-80gb 4 512 1 127.0 45.0
llama2-70b a100-80gb 4 1024 1 227.1 44.9
llama2-70b a100-80gb 4 2048 1 403.3 45.0
llama2-70b a100-80gb 4 4096 1 965.0 46.4
llama2-70b a100-80gb 4 8192 1 2278.0 46.1
llama2-70b a100-80gb 4 512 2 253.9 45.0
llama2-70b a100-80gb 4 512 4 571.4 45.1
llama2-70b a100-80gb 4 512 8 1233.0 46.2
llama2-70b a100-80gb 4 512 16 2892.0 48.5
llama2-70b a100-80gb 4 512 32 5131.0 52.3
llama2-70b a100-80gb 4 512 64 10947.0 72.9
llama2-70b a100-80gb 8 128 1 65.3 43.0
llama2-70b a100-80gb 8 256 1 66.8 43.5
llama2-70b a100-80gb 8 512 1 94.3 44.9
llama2-70b a100-80gb 8 1024 1 154.5 45.0
llama2-70b a100-80gb 8 2048 1 274.2 45.4
llama2-70b a100-80gb 8 4096 1 661.2 46.5
llama2-70b a100-80gb 8 8192 1 1549.8 46.5
llama2-70b a100-80gb 8 512 2 165.9 44.6
llama2-70b a100-80gb 8 512 4 292.3 45.8
llama2-70b a100-80gb 8 512 8 767.6 46.5
llama2-70b a100-80gb 8 512 16 2084.0 50.4
llama2-70b a100-80gb 8 512 32 3524.0 53.0
llama2-70b a100-80gb 8 512 64 7553.0 71.6
bloom-176b h100-sxm 8 128 1 48.3 35.7
bloom-176b h100-sxm 8 256 1 51.2 36.1
bloom-176b h100-sxm 8 512 1 75.5 36.1
bloom-176b h100-sxm 8 1024 1 132.6 35.7
bloom-176b h100-sxm 8 2048 1 253.1 35.7
bloom-176b h100-sxm 8 4096 1 688.7 36.9
bloom-176b h100-sxm 8 8192 1 1536.0 37.4
bloom-176b h100-sxm 8 512 2 131.3 36.9
bloom-176b h100-sxm 8 512 4 238.8 38.1
bloom-176b h100-sxm 8 512 8 625.0 38.1
bloom-176b h100-sxm 8 512 16 1313.0 40.6
bloom-176b h100-sxm 8 512 32 2521.0 45.8
bloom-176b h100-sxm 8 512 64 5025.0 63.8
bloom-176b a100-80gb 8 128 1 79.7 47.6
bloom-176b a100-80gb 8 256 1 99.2 47.7
bloom-176b a100-80gb 8 512 1 173.8 48.8
bloom-176b a100-80gb 8 1024 1 289.2 48.8
bloom-176b a100-80gb 8 2048 1 540.4 49.3
bloom-176b a100-80gb 8 4096 1 1348.0 50.2
bloom-176b a100-80gb 8 8192 1 3590.0 51.3
bloom-176b a100-80gb 8 512 2 286.8 50.0
bloom-176b a100-80gb 8 512 4 528.6 51.0
bloom-176b a100-80gb 8 512 8 1322.0 53.0
bloom-176b a100-80gb 8 512 16 3510.0 57.3
bloom-176b a100-80gb 8 512 32 5782.0 65.4
bloom-176b a100-80gb 8 512 64 11251.0 96.6
"""


def rows() -> list[dict]:
    out = []
    for line in ROWS.strip().splitlines():
        model, gpu, tp, isl, batch, prefill_ms, decode_ms = line.split()
        out.append({"model": model, "gpu": gpu, "tp": int(tp), "isl": int(isl), "batch": int(batch), "osl": 128,
                    "prefill_s": float(prefill_ms) / 1e3, "decode_s": float(decode_ms) / 1e3})
    return out
