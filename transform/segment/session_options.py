"""onnxruntime's session and run options, tuned for this workload (a leaf: model.py and convert.py
both use them). onnxruntime itself is imported only when they are made: importing it costs ~0.3 s."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnxruntime


def ort_options(threads: int, *, spin: bool = False) -> onnxruntime.SessionOptions:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # The CPU arena keeps the activations' memory between runs (about 430 MB here): every inference
    # after a process's first is about 10 % faster (no fresh pages to fault in). Large photos give it
    # back after their run (Model.run(release=True)). Memory patterns add ~450 MB kept for no speed.
    options.enable_cpu_mem_arena = True
    options.enable_mem_pattern = False
    # ALL (with the NCHWc layout passes) beat EXTENDED by 14-25 % per inference (bench/RESULTS.md).
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle intra-op threads spinning for work burn a core that pyvips request threads need: with a
    # render running alongside, spinning off gave 4-18 % faster inference and 5-11 % more renders (two
    # runs), and the same speed alone (within 5 %). Alone on the machine (remove-bg), spinning saves
    # about 3 % an inference (1.59 against 1.63 s, in-process, 5 rounds, 2026-12-01).
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    # Spinning ends with the run: the guided filter's own threads come right after it.
    options.add_session_config_entry("session.force_spinning_stop", "1")
    options.log_severity_level = 3
    return options


def run_options(*, release: bool) -> onnxruntime.RunOptions:
    """One run's options (a run can be stopped through them: ``Model.interrupt``); ``release``: give the
    memory the CPU arena took for this run back at its end."""
    import onnxruntime as ort

    options = ort.RunOptions()
    if release:
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options
