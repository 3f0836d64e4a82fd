"""The fuzzed public entry points: one table, ENTRY_POINTS = {name: case function}.

A case function gets `draw(strategy, label)` (hypothesis draws, logged before anything runs),
builds one call -- mostly valid arguments with one or two of them broken in a random way -- and
makes it. It returns normally for a correct result, lets ValueError/TypeError escape for a
rejected call, and fails an `assert` (or raises anything else) for a wrong outcome. Where a
mutation keeps the values (a strided or Fortran-ordered view, a read-only array, a list), an
accepted call must give exactly what the clean call gives.

To fuzz a new model or entry point, add one case function (fuzz_cases_*.py) and one line to ENTRY_POINTS.
"""
from fuzz_cases_atomic import atomic_write
from fuzz_cases_beam import beam_search_case, stream_case
from fuzz_cases_attention import attention, attention_seq2seq
from fuzz_cases_data import (checkpoint_damage, init_and_clip, optimizers, padding, sampling, shard,
                             splitting, stream_batches, vocab)
from fuzz_cases_distributed import setup_agreement
from fuzz_cases_nn import (cell_call, kernel_backward, kernel_forward, kernel_gemm, kernel_rows,
                           kernel_step, layer_forward_backward, layer_step, model_forward_step)
from fuzz_cases_runs import checkpoint_meta, run_log
from fuzz_cases_task_files import task_cli_files
from fuzz_cases_modes import module_modes
from fuzz_cases_ckpt_meta import checkpoint_metadata
from fuzz_cases_int8 import int8_checkpoint_damage, int8_product, quantize_call
from fuzz_cases_tasks import task_metrics, task_predict, task_readers
from fuzz_cases_habits import corpus_paths, lr_schedulers, sklearn_estimators, training_api
from fuzz_cases_precision import precision_api
from fuzz_cases_amx import amx_modes
from fuzz_cases_layer_ids import layer_ids_input
from fuzz_cases_fused import fused_s2s_step, fused_seq_step, fused_step
from fuzz_cases_step import model_step_state
from fuzz_cases_conditioned import conditioned_generate, conditioned_text

ENTRY_POINTS = {
    "kernel_forward": kernel_forward, "kernel_step": kernel_step, "kernel_backward": kernel_backward,
    "kernel_gemm": kernel_gemm, "kernel_rows": kernel_rows,
    "layer_forward_backward": layer_forward_backward, "layer_step": layer_step, "cell": cell_call,
    "model": model_forward_step, "sampling": sampling, "vocab": vocab,
    "stream_batches": stream_batches, "split": splitting, "pad_sequences": padding, "optimizers": optimizers,
    "checkpoint_damage": checkpoint_damage, "shard_batch": shard,
    "task_readers": task_readers, "task_metrics": task_metrics, "task_predict": task_predict,
    "init_and_clip": init_and_clip,
    "beam_search": beam_search_case, "sample_stream": stream_case,
    "checkpoint_meta": checkpoint_meta, "run_log": run_log, "setup_agreement": setup_agreement,
    "task_cli_files": task_cli_files,
    "module_modes": module_modes,
    "training_api": training_api, "lr_schedulers": lr_schedulers, "sklearn_estimators": sklearn_estimators,
    "corpus_paths": corpus_paths,
    "init_and_clip": init_and_clip, "checkpoint_metadata": checkpoint_metadata,
    "quantize": quantize_call, "int8_product": int8_product, "int8_checkpoint_damage": int8_checkpoint_damage,
    "init_and_clip": init_and_clip, "attention": attention, "attention_seq2seq": attention_seq2seq,
    "atomic_write": atomic_write, "precision": precision_api,
    "layer_ids_input": layer_ids_input,
    "fused_step": fused_step, "fused_seq_step": fused_seq_step, "fused_s2s_step": fused_s2s_step,
    "amx_modes": amx_modes,
    "model_step_state": model_step_state,
    "conditioned_generate": conditioned_generate, "conditioned_text": conditioned_text,
}
