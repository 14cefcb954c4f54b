"""fastfnn.bench.workloads: the steps of an epoch, the GEMMs of a step and their FLOPs."""

from fastfnn.bench import workloads


def test_batch_sizes_cover_every_row_once():
    assert workloads.batch_sizes(10, 4) == [4, 4, 2]
    assert workloads.batch_sizes(8, 4) == [4, 4]
    assert workloads.batch_sizes(10, None) == [10]
    assert workloads.batch_sizes(3, 128) == [3]
    assert workloads.batch_sizes(5, 1) == [1] * 5


def test_step_gemms_forward_then_backward_without_first_input_grad():
    assert workloads.step_gemms((784, 128, 64, 10), 32) == [
        (32, 784, 128), (32, 128, 64), (32, 64, 10),  # forward
        (64, 32, 10), (32, 10, 64),                   # last layer: weight grad, input grad
        (128, 32, 64), (32, 64, 128),
        (784, 32, 128),                               # first layer: weight grad only
    ]
    assert workloads.step_gemms((784, 10), 1) == [(1, 784, 10), (784, 1, 10)]


def test_epoch_flops_counts_forward_once_backward_twice_except_first_layer():
    n = 1000
    f = [2 * n * 784 * 128, 2 * n * 128 * 64, 2 * n * 64 * 10]
    expected = f[0] * 2 + f[1] * 3 + f[2] * 3
    assert workloads.epoch_flops((784, 128, 64, 10), n, 128) == expected
    # Independent of the batching: the GEMMs' rows add up to n whatever the batch size.
    assert workloads.epoch_flops((784, 128, 64, 10), n, 1) == expected
    assert workloads.epoch_flops((784, 128, 64, 10), n, None) == expected
    assert workloads.epoch_flops((784, 10), 60000, 1) == 2 * 2 * 60000 * 784 * 10
