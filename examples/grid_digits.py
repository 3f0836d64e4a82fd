"""2-D recurrence: classify scikit-learn's 8x8 digits with a GridRNN.

Four GRU sweeps of 32 units (left->right, right->left, top->bottom, bottom->top) run over every 8x8 image
(one channel); their outputs at each pixel are averaged over the image and classified. Same
seeded 80/20 split as digits_classify.py; prints the test accuracy next to the majority-class
baseline and, for comparison, the row-by-row LSTM classifier of digits_classify.py trained on
the same split.

    python examples/grid_digits.py [--quick] [--json] [--no-rows]
"""
import sys

from _common import Timer, parser, report
from _data import digits, majority, train
from digits_classify import train_row_classifier

import fastrnn


def main(argv=None):
    p = parser(__doc__, write_data=False)
    p.add_argument("--no-rows", action="store_true", help="skip the row-by-row comparison")
    args = p.parse_args(argv)
    (x_train, y_train), (x_test, y_test) = digits(args.seed)
    if not args.json:
        print("equivalent command: none (the command line has no image task)")
    timer = Timer()
    epochs = 4 if args.quick else 15
    model = fastrnn.GridRNN(in_channels=1, num_classes=10, hidden_size=32, cell="gru", seed=args.seed)
    batches = fastrnn.PaddedBatches(list(x_train), y_train, batch_size=32, seed=args.seed)
    # a PaddedBatches batch is (images (N, 8, 8), labels, lengths): add the channel axis
    seconds = train(model, batches, epochs=epochs, lr=1e-2, args=args,
                    forward=lambda b, train: model.forward((b[0][..., None], b[1]), train=train))
    metrics = dict(accuracy=float((model.predict(x_test[..., None]) == y_test).mean()),
                   majority_baseline=float((y_test == majority(y_train)).mean()), train_seconds=seconds)
    if not args.no_rows:
        rows, row_seconds = train_row_classifier((x_train, y_train), epochs=epochs, seed=args.seed,
                                                  args=args)
        metrics.update(row_lstm_accuracy=float((rows.predict(x_test) == y_test).mean()),
                       row_lstm_train_seconds=row_seconds)
    metrics["seconds"] = timer.seconds
    return report(args, metrics)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
