"""Many-to-one: classify scikit-learn's bundled 8x8 handwritten digits read row by row.

Each image is a sequence of 8 steps (its rows) of 8 features (the pixel intensities of the row,
scaled to [0, 1]); a SequenceClassifier (LSTM, the state after the last row -> 10 classes) is
trained with Adam on a seeded 80/20 split of the 1797 images. Prints the test accuracy next to
the majority-class baseline (always predict the training set's most frequent digit).

    python examples/digits_classify.py [--quick] [--json] [--write-data digits.tsv] [--int8]

--int8 also reports the test accuracy of the same model after fastrnn.quantize (int8 weights).
"""
import sys

import numpy as np

from _common import Timer, parser, report, show_command
from _data import digits, digits_as_text, majority, train

import fastrnn


def train_row_classifier(train_set, epochs, hidden=64, seed=0, args=None):
    """A SequenceClassifier trained on (images (N, 8, 8), labels) read row by row; (model, seconds)."""
    images, labels = train_set
    model = fastrnn.SequenceClassifier(10, input_size=images.shape[2], hidden_size=hidden, cell="lstm",
                                       seed=seed)
    batches = fastrnn.PaddedBatches(list(images), labels, batch_size=32, seed=seed)
    seconds = train(model, batches, epochs=epochs, lr=1e-2, args=args)
    return model, seconds


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--int8", action="store_true", help="also report the int8-quantized model's accuracy")
    args = p.parse_args(argv)
    (x_train, y_train), (x_test, y_test) = digits(args.seed)
    show_command(args, "fastrnn train --task classify {data} --level char --cell lstm --hidden 64 "
                       "--epochs 20   (pixel by pixel from the text file, not row by row)",
                 lambda: digits_as_text(np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])))
    timer = Timer()
    model, seconds = train_row_classifier((x_train, y_train), epochs=4 if args.quick else 20,
                                          seed=args.seed, args=args)
    accuracy = float((model.predict(x_test) == y_test).mean())
    extra = {}
    if args.int8:
        fastrnn.quantize(model)
        extra["int8_accuracy"] = float((model.predict(x_test) == y_test).mean())
    return report(args, dict(accuracy=accuracy, **extra, majority_baseline=float((y_test == majority(y_train)).mean()),
                             train_images=len(y_train), test_images=len(y_test),
                             train_seconds=seconds, seconds=timer.seconds))


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
