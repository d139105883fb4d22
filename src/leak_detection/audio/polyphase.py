"""``scipy.signal.resample_poly`` with a given filter, as one matrix product.

Resampling was a third of feature extraction: scipy's ``upfirdn`` is a scalar loop
(about 1.6 G multiply-adds per second here). Output sample ``q * up + r`` is an FIR
of the input around ``q * down`` with one of ``up`` polyphase sub-filters, so all
``up`` phases are the ``up`` columns of one product of the input's windows (one
starting every ``down`` samples) with the sub-filters: vectorised, and several times
faster. The sub-filters are padded to a common window of ``down + taps_per_phase``
samples, so the work grows by about ``up * down / filter_length``; where that waste
would exceed ``MAX_WASTE`` (rates such as 44.1 kHz -> 4096 Hz, up 1024 and down
11025), or where there are too few phases for a matrix product (integer
decimation), scipy's loop is the faster choice and is used. Measured
single-threaded on 10 s of noise: 16 kHz 3.6x, 8 kHz 1.7x, 48 kHz 4.2x.

The arithmetic is float32 (resample_poly's is float64 for float64 input): outputs
agree to about 1e-6 of the signal's scale, far below what a log-mel feature resolves.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import resample_poly

MAX_WASTE = 8.0
MIN_PHASES = 4  # with fewer output columns the product is a matrix-vector one, slower than scipy
MAX_KERNEL_BYTES = 16 << 20
"""Largest polyphase matrix ever built. The common rates need under 1 MB; an odd rate
such as 48001 Hz (up 4096, down 48001) would need 790 MB for a path that does not
even pay off there."""


class PolyphaseResampler:
    """``resample_poly(x, up, down, window=h)`` (zero padding) for a fixed ``up``, ``down`` and ``h``.

    Whether the matrix product pays off is decided from its size before it is built,
    so a rate pair that keeps scipy's loop costs only its filter in memory.
    """

    def __init__(self, up: int, down: int, window: np.ndarray) -> None:
        self.up, self.down = int(up), int(down)
        self.window = np.asarray(window, dtype=np.float64)
        half_len = (self.window.size - 1) // 2
        # resample_poly's own framing of the filter (scipy.signal.resample_poly).
        pre_pad = self.down - half_len % self.down
        pre_remove = (half_len + pre_pad) // self.down
        phase_taps = -(-(pre_pad + self.window.size) // self.up)
        # Output r of each group of `up` reads the input at q * down + offsets[r] - i
        # with sub-filter phases[r]: taps[phases[r] + up * i], i = 0 .. phase_taps - 1.
        starts = (np.arange(self.up, dtype=np.int64) + pre_remove) * self.down
        phases, offsets = starts % self.up, starts // self.up
        self.left = phase_taps - 1 - int(offsets.min())
        width = int(offsets.max() - offsets.min()) + phase_taps
        self.waste = width / phase_taps  # work per output against a filter with no padding
        kernel_bytes = 4 * width * self.up
        self.use_matmul = self.up >= MIN_PHASES and self.waste <= MAX_WASTE and kernel_bytes <= MAX_KERNEL_BYTES
        self.kernels = torch.zeros((0, self.up))
        if self.use_matmul:
            taps = np.zeros(phase_taps * self.up)
            taps[pre_pad : pre_pad + self.window.size] = self.window * self.up
            kernels = np.zeros((width, self.up), dtype=np.float32)
            for r in range(self.up):
                last = int(offsets[r]) + self.left  # where tap i = 0 lands in the window
                kernels[last - phase_taps + 1 : last + 1, r] = taps[phases[r] :: self.up][:phase_taps][::-1]
            self.kernels = torch.from_numpy(kernels)

    @property
    def nbytes(self) -> int:
        """Memory held: the filter and, on the matrix path, the polyphase matrix."""
        return self.window.nbytes + self.kernels.numel() * self.kernels.element_size()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n_in = x.shape[0]
        n_out = -(-n_in * self.up // self.down)
        if not self.use_matmul:
            return resample_poly(x, self.up, self.down, window=self.window).astype(np.float32)
        groups = -(-n_out // self.up)
        width = self.kernels.shape[0]
        right = max(0, (groups - 1) * self.down + width - self.left - n_in)
        signal = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        padded = F.pad(signal, (self.left, right))
        windows = padded.as_strided((groups, width), (self.down, 1))  # window q starts at q * down
        return (windows @ self.kernels).reshape(-1)[:n_out].numpy()  # [groups, up]: q * up + r in order
