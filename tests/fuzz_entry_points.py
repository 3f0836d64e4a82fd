"""The fuzzed public entry points: one table, ENTRY_POINTS = {name: case function}.

A case function gets `draw(strategy, label)` (hypothesis draws, logged before anything runs),
builds one call -- mostly valid arguments with one or two of them broken in a random way -- and
makes it. It returns normally for a correct result, lets ValueError/TypeError escape for a
rejected call, and fails an `assert` (or raises anything else) for a wrong outcome. Where a
mutation keeps the values (a strided or Fortran-ordered view, a read-only array, a list), an
accepted call must give exactly what the clean call gives.

To fuzz a new model or entry point, add one case function (fuzz_cases_*.py) and one line to ENTRY_POINTS.
"""
from fuzz_cases_attention import attention, attention_seq2seq
from fuzz_cases_data import (checkpoint_damage, init_and_clip, optimizers, padding, sampling, shard,
                             splitting, stream_batches, vocab)
from fuzz_cases_nn import (cell_call, kernel_backward, kernel_forward, kernel_gemm, kernel_rows,
                           kernel_step, layer_forward_backward, layer_step, model_forward_step)
from fuzz_cases_tasks import task_metrics, task_predict, task_readers

ENTRY_POINTS = {
    "kernel_forward": kernel_forward, "kernel_step": kernel_step, "kernel_backward": kernel_backward,
    "kernel_gemm": kernel_gemm, "kernel_rows": kernel_rows,
    "layer_forward_backward": layer_forward_backward, "layer_step": layer_step, "cell": cell_call,
    "model": model_forward_step, "sampling": sampling, "vocab": vocab,
    "stream_batches": stream_batches, "split": splitting, "pad_sequences": padding, "optimizers": optimizers,
    "checkpoint_damage": checkpoint_damage, "shard_batch": shard,
    "task_readers": task_readers, "task_metrics": task_metrics, "task_predict": task_predict,
    "init_and_clip": init_and_clip, "attention": attention, "attention_seq2seq": attention_seq2seq,
}
