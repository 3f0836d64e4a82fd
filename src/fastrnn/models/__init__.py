"""Models: one short file per sequence shape, each composing `fastrnn.nn` blocks, and the
registry through which `fastrnn.save/load` rebuild them."""
from .lm import LanguageModel
from .registry import MODELS, build, register
from .classifier import SequenceClassifier  # noqa: I001  (after registry)
from .regressor import SequenceRegressor
from .tagger import SequenceTagger
from .seq2seq import Seq2Seq
from .attention_seq2seq import AttentionSeq2Seq
from .conditioned import ConditionedGenerator, StateFromCondition
from .output_recurrent import OutputRecurrentNet
from .grid import GridRNN

__all__ = ["LanguageModel", "MODELS", "build", "register",
           "SequenceClassifier", "SequenceTagger", "SequenceRegressor",
           "Seq2Seq", "AttentionSeq2Seq", "ConditionedGenerator", "StateFromCondition", "OutputRecurrentNet", "GridRNN"]
