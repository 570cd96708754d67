"""Rerunning a stored fine-tuning job elsewhere: on several GPUs or machines, with the job's
downloaded config. The Fine-tune page shows these lines; ``tests/test_cli_reference.py`` parses
each one with the CLI's own parser, so they cannot name a command or flag the CLI lacks.

Example:
    >>> config_file_name(7)
    'job-7.json'
"""
from __future__ import annotations

import shlex


def config_file_name(job_id: int) -> str:
    """The name the Fine-tune page downloads a job's config as, and the commands below read."""
    return f"job-{job_id}.json"


def distributed_commands(job_id: int, pair_set_id: int, processes: int = 2,
                         prog: str = "python -m core") -> str:
    """The shell lines that rerun a stored fine-tuning job on several GPUs or machines: export
    its test set and training pairs, then ``train`` under torchrun (or accelerate launch) with the
    job's downloaded config file."""
    train = shlex.join(["train", "--config", config_file_name(job_id), "--pairs-file", "train.jsonl",
                        "--eval", "eval/", "--output", f"job-{job_id}-model"])
    return "\n".join((
        f"{prog} {shlex.join(['pairs', 'export', str(pair_set_id), '--beir', 'eval/'])}",
        f"{prog} {shlex.join(['pairs', 'export', str(pair_set_id), '--split', 'train', '--output', 'train.jsonl'])}",
        f"torchrun --nproc_per_node {processes} -m core {train}",
        f"# or: accelerate launch --num_processes {processes} -m core {train}"))
