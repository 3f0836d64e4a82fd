"""The three text tasks: `classify` (text<TAB>label -> SequenceClassifier), `tag` (CoNLL ->
SequenceTagger) and `seq2seq` (source<TAB>target -> Seq2Seq with greedy or beam decoding)."""
import numpy as np

from ..data import Vocab
from ..data_batches import PaddedBatches
from ..models import AttentionSeq2Seq, Seq2Seq, SequenceClassifier, SequenceTagger
from ..models.seq2seq import MAX_DECODE_LEN
from ..train.callbacks import ModelForward
from . import metrics as M
from .base import Task, build_vocab, ids_of, in_batches, tokens_of
from .formats import FormatError, read_classify, read_conll, read_seq2seq, report

BOS = "<bos>"


def _encoder_options(o):
    """The constructor arguments every encoder model takes from the command-line options."""
    return dict(embed_size=o["embed"], hidden_size=o["hidden"], cell=o["cell"],
                num_layers=o["layers"], dropout=o["dropout"], dtype=o["dtype"], seed=o["seed"])


class _Labelled(Task):
    """Shared by classify and tag: a token vocabulary and a list of labels."""

    _vocab = _index = None

    @property
    def vocab(self):
        """The token Vocab of `state` (built once)."""
        if self._vocab is None:
            self._vocab = Vocab.from_dict(self.state["vocab"])
        return self._vocab

    @property
    def label_index(self):
        """{label: id} of `state` (built once)."""
        if self._index is None:
            self._index = {label: i for i, label in enumerate(self.state["labels"])}
        return self._index

    def _label_ids(self, labels, record, path, errors):
        """ids of a record's labels, or None after reporting one unseen in training."""
        index = self.label_index
        unseen = [y for y in labels if y not in index]
        if unseen:
            known = ", ".join(self.state["labels"][:10]) + (", ..." if len(index) > 10 else "")
            report(errors, FormatError(path, record.line, f"label {unseen[0]!r} was not seen in "
                                                          f"training (known: {known})"))
            return None
        return [index[y] for y in labels]


class Classify(_Labelled):
    """text<TAB>label lines -> one label per text; metric: accuracy."""

    name, metric_names, stats_size, line_oriented = "classify", ("accuracy",), 2, True

    def read(self, path, labelled=True, errors=None):
        return read_classify(path, labelled, errors)

    def fit(self, train, everything):
        level = self.o["level"]
        vocab = build_vocab([tokens_of(r.x, level) for r in train], level, self.o["min_count"])
        self.state = dict(vocab=vocab.to_dict(), labels=sorted({r.y for r in everything}))

    def encode(self, data, path, errors=None):
        inputs, targets, kept = [], [], []
        for r in data:
            label = [0] if r.y is None else self._label_ids([r.y], r, path, errors)
            tokens = tokens_of(r.x, self.vocab.level)
            if not tokens:
                report(errors, FormatError(path, r.line, "expected text with at least one word"))
                continue
            if label is not None:
                inputs.append(ids_of(self.vocab, tokens))
                targets.append(label[0])
                kept.append(r)
        return inputs, np.array(targets, np.int64), kept

    def build_model(self):
        return SequenceClassifier(len(self.state["labels"]), vocab_size=len(self.vocab),
                                  bidirectional=bool(self.o["bidirectional"]),
                                  pooling=self.o["pool"], **_encoder_options(self.o))

    def _probabilities(self, model, inputs):
        probs = np.zeros((len(inputs), len(self.state["labels"])))
        for idx, x, lengths in in_batches(inputs, self.o["batch"]):
            probs[idx] = model.predict_proba(x, lengths)
        return probs

    def metric_stats(self, model, encoded):
        predicted = self._probabilities(model, encoded[0]).argmax(axis=1)
        return np.array(M.accuracy_counts(predicted, encoded[1]), np.float64)

    def metrics_from_stats(self, stats):
        return {"accuracy": M.ratio(*stats)}

    def predict(self, model, encoded):
        probs = self._probabilities(model, encoded[0])
        labels = self.state["labels"]
        return [f"{labels[k]}\t{p[k]:.4f}" for p, k in zip(probs, probs.argmax(axis=1))]


class Tag(_Labelled):
    """CoNLL sentences -> one tag per token; metrics: token accuracy, and entity precision,
    recall and F1 when the tags are BIO."""

    name, metric_names = "tag", ("token_acc", "entity_f1", "entity_precision", "entity_recall")
    headline_names, stats_size = ("entity_f1", "token_acc"), 5

    def read(self, path, labelled=True, errors=None):
        return read_conll(path, labelled, errors)

    def fit(self, train, everything):
        vocab = build_vocab([r.x for r in train], "word", self.o["min_count"])
        self.state = dict(vocab=vocab.to_dict(), labels=sorted({t for r in everything for t in r.y}))

    def encode(self, data, path, errors=None):
        inputs, targets, kept = [], [], []
        for r in data:
            tags = np.zeros(len(r.x), np.int64) if r.y is None else self._label_ids(r.y, r, path, errors)
            if tags is not None:
                inputs.append(ids_of(self.vocab, r.x))
                targets.append(np.asarray(tags, np.int64))
                kept.append(r)
        return inputs, targets, kept

    def batches(self, encoded, batch_size, shuffle, seed=0):
        return PaddedBatches(encoded[0], encoded[1], batch_size=batch_size, shuffle=shuffle,
                             seed=seed, targets_per_step=True)

    def build_model(self):
        bidirectional = True if self.o["bidirectional"] is None else self.o["bidirectional"]
        return SequenceTagger(len(self.state["labels"]), vocab_size=len(self.vocab),
                              bidirectional=bidirectional, **_encoder_options(self.o))

    def _tags(self, model, inputs):
        """Predicted tag names per sentence."""
        out, labels = [None] * len(inputs), self.state["labels"]
        for idx, x, lengths in in_batches(inputs, self.o["batch"]):
            for i, ids in zip(idx, model.predict(x, lengths)):
                out[i] = [labels[k] for k in ids]
        return out

    def metric_stats(self, model, encoded):
        """[right tags, tags, entity spans found, predicted, gold]."""
        labels = self.state["labels"]
        predicted = self._tags(model, encoded[0])
        gold = [[labels[k] for k in t] for t in encoded[1]]
        return np.array([*M.token_counts(predicted, gold), *M.entity_counts(predicted, gold)], np.float64)

    def metrics_from_stats(self, stats):
        right, total, *spans = stats
        values = {"token_acc": M.ratio(right, total)}
        if M.is_entity_tags(self.state["labels"]):
            p, r, f1 = M.prf(*spans)
            values.update(entity_f1=f1, entity_precision=p, entity_recall=r)
        return values

    def predict(self, model, encoded):
        return ["\n".join(f"{tok}\t{tag}" for tok, tag in zip(r.x, tags)) + "\n"
                for r, tags in zip(encoded[2], self._tags(model, encoded[0]))]


class _Seq2SeqForward(ModelForward):
    """The Trainer's forward for Seq2Seq over PaddedBatches whose targets are rows
    [target length, target ids..., padding] (a ModelForward: the fused step applies)."""

    def model_batch(self, batch):
        src, tgt, src_lengths = batch
        n = tgt[:, 0]
        return src, src_lengths, tgt[:, 1:1 + int(n.max())], n


class Translate(Task):
    """source<TAB>target lines -> Seq2Seq; metrics: exact match and the token error rate
    (`cer` for character targets, `ter` for word/phoneme targets)."""

    name, stats_size, line_oriented = "seq2seq", 4, True

    def check_options(self):
        pass                    # source:target levels and --attention are seq2seq's own

    @property
    def levels(self):
        """(source level, target level) from --level char|word|char:word|word:char."""
        level = self.o["level"]
        return tuple(level.split(":")) if ":" in level else (level, level)

    @property
    def metric_names(self):
        return ("exact_match", "cer" if self.levels[1] == "char" else "ter")

    @property
    def headline_names(self):
        return self.metric_names[1:]            # the error rate: exact match is often 0 early on

    def read(self, path, labelled=True, errors=None):
        return read_seq2seq(path, labelled, errors)

    def fit(self, train, everything):
        (ls, lt), mc = self.levels, self.o["min_count"]
        src = build_vocab([tokens_of(r.x, ls) for r in train], ls, mc)
        tgt_tokens = [tokens_of(r.y, lt) for r in train]
        tgt = build_vocab(tgt_tokens, lt, mc, extra=(BOS,))
        self.state = dict(src_vocab=src.to_dict(), tgt_vocab=tgt.to_dict(),
                          max_len=min(2 * max(len(t) for t in tgt_tokens) + 5, MAX_DECODE_LEN))

    def vocabs(self):
        """(source Vocab, target Vocab)."""
        if getattr(self, "_vocabs", None) is None:
            self._vocabs = (Vocab.from_dict(self.state["src_vocab"]), Vocab.from_dict(self.state["tgt_vocab"]))
        return self._vocabs

    def encode(self, data, path, errors=None):
        (ls, lt), (src_vocab, tgt_vocab) = self.levels, self.vocabs()
        inputs, targets, kept = [], [], []
        for r in data:
            src = tokens_of(r.x, ls)
            tgt = [] if r.y is None else tokens_of(r.y, lt)
            if not src or (r.y is not None and not tgt):
                report(errors, FormatError(path, r.line, f"expected a non-empty {'target' if src else 'source'}"))
                continue
            inputs.append(ids_of(src_vocab, src))
            targets.append(ids_of(tgt_vocab, tgt))
            kept.append(r)
        width = 1 + max((len(t) for t in targets), default=0)
        rows = np.zeros((len(targets), width), np.int64)
        for row, t in zip(rows, targets):
            row[0], row[1:1 + len(t)] = len(t), t
        return inputs, rows, kept

    def build_model(self):
        o, (src, tgt) = self.o, self.vocabs()
        # --attention (recorded in the options; absent from checkpoints before it) picks the class
        attention = dict(attention=o["attention"]) if o.get("attention") else {}
        return (AttentionSeq2Seq if attention else Seq2Seq)(
            len(src), len(tgt), cell=o["cell"], embed_size=o["embed"], hidden_size=o["hidden"],
            num_layers=o["layers"], bidirectional=bool(o["bidirectional"]), bos_id=tgt.stoi[BOS],
            eos_id=tgt.eos_id, dtype=o["dtype"], seed=o["seed"], **attention)

    def forward(self, model):
        return _Seq2SeqForward(model)

    def decode(self, model, inputs):
        """The decoded target ids of every source (greedy, or beam search with --beam > 1)."""
        out, beam, max_len = [None] * len(inputs), self.o.get("beam"), self.state["max_len"]
        for idx, x, lengths in in_batches(inputs, self.o["batch"]):
            if beam and beam > 1:
                decoded = [ids for ids, _ in model.beam_search(x, lengths, beam, max_len)]
            else:
                decoded = model.greedy(x, lengths, max_len)
            for i, ids in zip(idx, decoded):
                out[i] = ids
        return out

    def metric_stats(self, model, encoded):
        """[exact matches, examples, total edit distance, total gold length]."""
        predicted = self.decode(model, encoded[0])
        gold = [row[1:1 + row[0]].tolist() for row in encoded[1]]
        return np.array([*M.exact_counts(predicted, gold), *M.edit_counts(predicted, gold)], np.float64)

    def metrics_from_stats(self, stats):
        exact, n, dist, total = stats
        return {"exact_match": M.ratio(exact, n), self.metric_names[1]: M.ratio(dist, total)}

    def predict(self, model, encoded):
        tgt = self.vocabs()[1]
        return [tgt.decode(ids) for ids in self.decode(model, encoded[0])]
