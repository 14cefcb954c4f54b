"""Real-image preparation: polarity, size, centring, bad files."""

import numpy as np
import pytest

pytest.importorskip("PIL", reason="image input needs the 'images' extra (Pillow)")

from PIL import Image  # noqa: E402

from fastfnn.images import load_digit, prepare_digit  # noqa: E402


def _bar_image(dark_on_light, size=(90, 60), box=(20, 10, 70, 25)):
    """A thick horizontal stroke off-centre in a larger canvas."""
    img = np.full(size, 255 if dark_on_light else 0, np.uint8)
    r0, c0, r1, c1 = box
    img[r0:r1, c0:c1] = 0 if dark_on_light else 255
    return img


@pytest.mark.parametrize("dark_on_light", [True, False])
def test_either_polarity_gives_white_on_black_centred(dark_on_light):
    digit = prepare_digit(_bar_image(dark_on_light)).reshape(28, 28).astype(float)
    assert digit[0].max() == 0 and digit[:, 0].max() == 0  # black border
    assert digit.max() > 200
    ys, xs = np.indices(digit.shape)
    assert abs((ys * digit).sum() / digit.sum() - 13.5) <= 1
    assert abs((xs * digit).sum() / digit.sum() - 13.5) <= 1
    rows = np.flatnonzero(digit.max(axis=1) > 0)
    assert rows[-1] - rows[0] + 1 <= 22  # fitted into the 20-pixel box (plus resampling blur)


def test_files_round_trip_through_pillow(tmp_path):
    path = tmp_path / "seven.png"
    Image.fromarray(_bar_image(True)).save(path)
    np.testing.assert_array_equal(load_digit(path), prepare_digit(_bar_image(True)))
    jpeg = tmp_path / "seven.jpg"
    Image.fromarray(_bar_image(False)).save(jpeg, quality=95)
    assert load_digit(jpeg).shape == (784,)


def test_bad_images_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="blank"):
        prepare_digit(np.full((10, 10), 7))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="not a readable image"):
        load_digit(junk)
    with pytest.raises(FileNotFoundError):
        load_digit(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="2-D"):
        prepare_digit(np.zeros((3, 3, 3)))


def test_mnist_digits_drawn_large_and_inverted_are_still_recognised(mnist_uint8):
    from fastfnn import FastFNN

    (X, y), (X_test, y_test) = mnist_uint8
    model = FastFNN((128,), solver="sgd", learning_rate_init=0.05, batch_size=128, max_iter=3,
                    backend="numpy", random_state=0).fit(X, y)
    redrawn = []
    for image in X_test[:200].reshape(-1, 28, 28).astype(float):
        canvas = np.zeros((200, 260))
        canvas[30:170, 70:210] = np.kron(image, np.ones((5, 5)))  # 5x larger, off-centre
        redrawn.append(prepare_digit(255 - canvas))  # dark ink on white paper
    accuracy = np.mean(model.predict(np.array(redrawn)) == y_test[:200])
    assert accuracy >= 0.9
