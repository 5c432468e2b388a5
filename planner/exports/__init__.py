"""Executor exports for named executor versions: shared helpers (common, train_layout) and one module per
executor (megatron, torchtitan, deepspeed, vllm, sglang, expert_maps). The planners' export.py files dispatch here.
"""
