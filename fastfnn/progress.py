"""Training progress for people: a tqdm bar per epoch and one summary line per epoch."""

from __future__ import annotations

import sys


def format_epoch(epoch, record, max_epochs=None) -> str:
    """One line for one epoch's history record (loss, accuracy, validation, seconds); entries that
    are None (a regressor's accuracy, no validation set) are left out."""
    total = f"/{max_epochs}" if max_epochs else ""
    line = f"epoch {epoch + 1}{total}  loss {record['loss']:.4f}"
    for key in ("accuracy", "val_loss", "val_accuracy"):
        if record.get(key) is not None:
            line += f"  {key} {record[key]:.4f}"
    return line + f"  {record['seconds']:.2f}s"


class EpochProgress:
    """Reports a fit: a bar over each epoch's rows with running loss and accuracy (only when
    ``stream`` is a terminal, unless ``bar`` says otherwise) and a summary line after each epoch.

    Pass :meth:`on_progress` and :meth:`on_epoch` to :func:`fastfnn.trainer.train`.
    """

    def __init__(self, max_epochs=None, stream=None, bar=None):
        self.stream = sys.stderr if stream is None else stream
        self.max_epochs = max_epochs
        self.bar_enabled = bool(self.stream.isatty()) if bar is None else bar
        self._bar = None
        self._epoch = 0

    def on_progress(self, rows_done, n, loss_sum, correct):
        """Advance the bar to ``rows_done`` of ``n`` rows with the running loss and accuracy."""
        if not self.bar_enabled:
            return
        if self._bar is None:
            from tqdm.auto import tqdm
            total = f"/{self.max_epochs}" if self.max_epochs else ""
            self._bar = tqdm(total=n, unit="row", unit_scale=True, leave=False, file=self.stream,
                             desc=f"epoch {self._epoch + 1}{total}")
        self._bar.update(rows_done - self._bar.n)
        self._bar.set_postfix(loss=f"{loss_sum / rows_done:.4f}",
                              accuracy=f"{correct / rows_done:.4f}")

    def on_epoch(self, epoch, record):
        """Close the epoch's bar and print its summary line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._epoch = epoch + 1
        print(format_epoch(epoch, record, self.max_epochs), file=self.stream, flush=True)
