"""The language model as one more task (`fastrnn train [CORPUS]`, the default `--task lm`).

What a language-model run needs beyond the Trainer: its options and their defaults, the
vocabulary fitted on the corpus (saved as the checkpoint's vocabulary, so `fastrnn sample` needs
nothing else), the split (`tail`: the corpus' last part; `interleaved`: the last part of every
batch stream, char-rnn's protocol, see `tasks.interleaved`), the stream batches and the state
carried from window to window (truncated backpropagation through time, `StateCarry`).
"""
from ..data import StreamBatches, Vocab
from ..train.callbacks import StateCarry

VAL_TOKENS = 200_000        # validation ids of the tail split read at each validation (its cost bound)


def tokens(batch):
    """Tokens in a stream batch (inputs, targets): the items of the rate display."""
    return batch[0].size


tokens.unit = "tok"         # the progress bar shows tok_s


def carry(model):
    """The Trainer hooks of a language model: the state-carrying forward and the token count."""
    return dict(forward=StateCarry(model), items=tokens)


def stream_batches(train_ids, val_ids, batch_size, seq_len, val_tokens=VAL_TOKENS):
    """char-rnn's streams of a language model's ids: training and (bounded) validation windows."""
    batches, val_batches = StreamBatches(train_ids, batch_size, seq_len), None
    if val_ids is not None and val_tokens:
        val_ids = val_ids[:val_tokens + 1]    # bound the cost of each validation
    if val_ids is not None and len(val_ids) > 1:
        # validation may be short: shrink its batch so at least one window fits
        val_b = max(1, min(batch_size, (len(val_ids) - 1) // seq_len))
        if (len(val_ids) - 1) // val_b >= seq_len:
            val_batches = StreamBatches(val_ids, val_b, seq_len)
    return batches, val_batches


class LanguageModelTask:
    """A character- or word-level language model on a text corpus.

    `options` are the run's (see `defaults`); `vocab` the fitted vocabulary (None until `fit`).
    """

    name = "lm"
    levels = ("char", "word")
    vocab_from_corpus = True    # learns from a text corpus (fastrnn.cli.sources.Corpus)
    try_next = "sample"         # the command that uses its checkpoints
    # the options of a language-model run and their defaults; epochs, max_time and min_count
    # None: chosen by the command line (the embedded corpus has its own, see fastrnn.cli.run)
    defaults = dict(level="char", cell="lstm", hidden=128, layers=2, dropout=0.0, embed=None,
                    batch=50, seq_len=50, lr=2e-3, optimizer="adam", clip=5.0, lr_decay=1.0,
                    lr_decay_every=None, val_frac=0.05, test_frac=0.0, eval_every=200, seed=0,
                    dtype="float32", min_count=None, epochs=None, max_time=None, split="tail",
                    clip_value=None, lr_decay_after=None, init_range=None, early_stop=None)
    # on --resume these are fixed by the checkpoint (model, vocabulary, batching, optimiser, RNG) ...
    resume_fixed = ("level", "min_count", "cell", "hidden", "layers", "dropout", "embed", "dtype",
                    "seed", "batch", "seq_len", "optimizer", "init_range")
    fixed_reason = "the model, vocabulary, batching and optimiser come from the checkpoint"
    # ... and these must match how the run split its corpus (stored in the checkpoint's metadata)
    resume_split = ("val_frac", "test_frac", "split")
    resume_free = ()            # besides the Trainer's schedule (epochs, lr, ...)

    def __init__(self, options, vocab=None):
        self.o, self.vocab = dict(options), vocab

    def check_options(self):
        """ValueError for options that cannot go together."""
        o = self.o
        if o["level"] not in self.levels:
            raise ValueError(f"--level {o['level']}: only for --task classify|tag|seq2seq|forecast")
        if o["val_frac"] + o["test_frac"] >= 1:
            raise ValueError(f"--val-frac + --test-frac: expected < 1, got {o['val_frac'] + o['test_frac']}")

    def fit(self, text):
        """The vocabulary of the corpus (tokens seen fewer than min_count times become <unk>)."""
        self.vocab = Vocab.build(text, level=self.o["level"], min_count=self.o["min_count"])
        return self.vocab

    def build_model(self):
        """A new LanguageModel for the vocabulary and the options."""
        from ..models import LanguageModel
        o = self.o
        return LanguageModel(len(self.vocab), cell=o["cell"], hidden_size=o["hidden"],
                             num_layers=o["layers"], dropout=o["dropout"], embed_size=o["embed"],
                             dtype=o["dtype"], seed=o["seed"])

    def batches(self, text, batch_size, seq_len, val_tokens=VAL_TOKENS):
        """(training batches, validation batches or None, training tokens) of the corpus text,
        split as the options say (`tail`, its validation bounded to `val_tokens`, or
        `interleaved`)."""
        o, ids = self.o, self.vocab.encode(text)
        if o["split"] == "interleaved":
            from .interleaved import interleaved_split
            train, val = interleaved_split(ids, batch_size, seq_len, o["val_frac"], o["test_frac"])
            return train, val, len(train) * batch_size * seq_len
        from ..data import split
        train, val, _ = split(ids, o["val_frac"], o["test_frac"])
        return (*stream_batches(train, val, batch_size, seq_len, val_tokens), len(train))

    def trainer_hooks(self, model):
        """forward/items/vocab arguments of the Trainer: the carried state, tokens, the vocabulary."""
        return dict(carry(model), vocab=self.vocab)

    def split_meta(self):
        """The options that fix the split, as the checkpoint's metadata records them."""
        return {k: self.o[k] for k in self.resume_split}
