"""Fréchet distance between feature sets, and the small encoders that produce the features.

`frechet_distance` fits a Gaussian to each feature set and returns
`|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^{1/2})` (as in FID/FVD).

Why our own small, supervised encoders instead of Inception/I3D features: bouncing-balls frames are
tiny grayscale images far outside ImageNet/Kinetics, and what matters for them is *where the balls are
and how they move*. An encoder trained on the real data to regress the ground-truth ball positions
(and, for clips, velocities) plus a coarse picture of the layout has penultimate-layer features that
change when a generator misplaces, drops, duplicates or teleports balls, and that ignore differences a
generic network would be distracted by. The encoder is trained once on REAL data, saved as a `.keras`
file in a cache directory, and the same file is used for every real-vs-generated comparison, so
distances from different runs are comparable as long as they use the same encoder file.

Sample size: the Fréchet distance of finite samples is biased upward by roughly `c / N` (measured here:
real-vs-real clip FD 25.7 / 13.0 / 6.4 for N = 50 / 100 / 200 clips, D = 64). Always compare numbers
computed with the same N, report the real-vs-real value next to real-vs-generated, and use N >= 1000
where possible.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import Callable

import keras
import numpy as np
import scipy.linalg
import tensorflow as tf

from tfvidgan.errors import ConfigError, DatasetError, TrainingDivergedError

__all__ = [
    "frechet_distance",
    "FrechetEncoder",
    "train_frame_encoder",
    "train_clip_encoder",
    "load_or_train_encoder",
    "encoder_frechet_distance",
]

_FEATURES_LAYER = "features"
_KINDS = {"frame_encoder": 4, "clip_encoder": 5}  # model name -> rank of its input batch
_LAYOUT_SIZE = 8  # side of the coarse layout picture used as a regression target


# --------------------------------------------------------------------------------------------------
# Fréchet distance
# --------------------------------------------------------------------------------------------------

# Seed of the real samples and initialisation of the evaluation encoders: fixed, so that an encoder's
# cache name (data + settings) fully determines it, whatever seed an evaluation samples with.
ENCODER_SEED = 0


def _check_features(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise DatasetError(f"{name} must have shape [N>=2, D>=1], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DatasetError(f"{name} contains NaN or infinite values")
    return x


def _trace_sqrt_product_eigh(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """`tr((S_a S_b)^{1/2})` computed as `tr((S_a^{1/2} S_b S_a^{1/2})^{1/2})`.

    The inner matrix is symmetric positive semi-definite, so symmetric eigendecompositions give a real,
    exact answer even when the covariances are singular (N <= D); tiny negative eigenvalues from
    round-off are clipped to 0.
    """
    vals, vecs = np.linalg.eigh(cov_a)
    sqrt_a = (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T
    inner = sqrt_a @ cov_b @ sqrt_a
    inner = (inner + inner.T) / 2.0
    return float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(inner), 0.0, None))))


def _trace_sqrt_product_sqrtm(cov_a: np.ndarray, cov_b: np.ndarray, eps: float) -> float:
    """`tr((S_a S_b)^{1/2})` with `scipy.linalg.sqrtm` of the (non-symmetric) product.

    If the square root is not finite (near-singular covariances) both covariances get `eps * I` added and
    it is recomputed; the real part is taken (the imaginary part is round-off).
    """
    with warnings.catch_warnings():
        # Singular products are expected for N <= D; the offset below handles the non-finite case.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
        if not np.all(np.isfinite(covmean)):
            offset = np.eye(cov_a.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    return float(np.real(np.trace(covmean)))


def frechet_distance(features_a, features_b, eps: float = 1e-6, method: str = "eigh") -> float:
    """Fréchet distance between Gaussians fitted to two feature sets.

    Args:
      features_a: `[N, D]` float features (N >= 2), e.g. from `FrechetEncoder.features`.
      features_b: `[M, D]` float features (M >= 2), same D.
      eps: diagonal offset used by `method="sqrtm"` when the square root of a near-singular product
        is not finite.
      method: "eigh" (default; exact symmetric formulation, robust to singular covariances) or "sqrtm"
        (the classic FID recipe with `scipy.linalg.sqrtm`, real part). Both agree on well-conditioned
        inputs.

    Returns:
      A Python float >= 0 (round-off below 0 is clipped). Units: squared feature units. It is symmetric
      in its arguments and 0 for identical sets. Note that it is biased upward for small N; compare
      values computed with the same sample sizes.

    Raises:
      DatasetError: wrong shapes, different D, or non-finite features.
      ConfigError: unknown `method`.
    """
    a = _check_features(features_a, "features_a")
    b = _check_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise DatasetError(f"features_a and features_b differ in feature size D: {a.shape[1]} vs {b.shape[1]}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    if method == "eigh":
        tr_sqrt = _trace_sqrt_product_eigh(cov_a, cov_b)
    elif method == "sqrtm":
        tr_sqrt = _trace_sqrt_product_sqrtm(cov_a, cov_b, eps)
    else:
        raise ConfigError(f"method must be 'eigh' or 'sqrtm', got {method!r}")
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_sqrt)
    return max(value, 0.0)


# --------------------------------------------------------------------------------------------------
# Encoders
# --------------------------------------------------------------------------------------------------


class FrechetEncoder:
    """A trained frame or clip encoder; `features(x)` are its penultimate-layer activations.

    Build one with `train_frame_encoder` / `train_clip_encoder`, or `FrechetEncoder.load(path)`.

    Attributes:
      model: the full Keras model (input -> proxy-task predictions); its layer "features" is the
        penultimate layer.
      kind: "frame_encoder" (input `[N, H, W, C]`) or "clip_encoder" (input `[N, T, H, W, C]`).
      input_shape: the per-example input shape, e.g. `(32, 32, 1)` or `(16, 32, 32, 1)`.
      feature_dim: D.
      loss_history: per-step training losses (empty for a loaded encoder).
    """

    def __init__(self, model: keras.Model, loss_history: list[float] | None = None):
        if model.name not in _KINDS:
            raise ConfigError(f"encoder model name must be one of {sorted(_KINDS)}, got {model.name!r}")
        try:
            features_layer = model.get_layer(_FEATURES_LAYER)
        except ValueError as err:
            raise ConfigError(f"encoder model {model.name!r} has no layer named {_FEATURES_LAYER!r}") from err
        self.model = model
        self.kind = model.name
        self.input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        self._feature_model = keras.Model(model.inputs[0], features_layer.output)
        self.feature_dim = int(features_layer.output.shape[-1])
        self.loss_history = list(loss_history or [])

    def features(self, x, batch_size: int = 128) -> np.ndarray:
        """Encodes `x` in batches.

        Args:
          x: `[N, H, W, C]` (frame encoder) or `[N, T, H, W, C]` (clip encoder) float in [-1, 1], with
            the per-example shape the encoder was trained on.
          batch_size: examples per forward pass.

        Returns:
          `[N, D] float64` features.

        Raises:
          DatasetError: the per-example shape differs from `input_shape`.
        """
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            raise DatasetError(
                f"{self.kind} expects inputs of shape [N, {', '.join(map(str, self.input_shape))}], "
                f"got shape {x.shape}"
            )
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size!r}")
        out = [
            np.asarray(self._feature_model(x[i : i + batch_size], training=False), dtype=np.float64)
            for i in range(0, x.shape[0], batch_size)
        ]
        return np.concatenate(out, axis=0) if out else np.zeros((0, self.feature_dim))

    def save(self, path: str) -> None:
        """Writes the encoder to `path` (must end in ".keras") atomically (temp file + rename)."""
        if not str(path).endswith(".keras"):
            raise ConfigError(f"encoder path must end with '.keras', got {path!r}")
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".keras", dir=directory)
        os.close(fd)
        try:
            self.model.save(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    @classmethod
    def load(cls, path: str) -> "FrechetEncoder":
        """Reads an encoder written by `save`. Raises DatasetError if the file is missing or unreadable."""
        if not os.path.isfile(path):
            raise DatasetError(f"encoder file {path!r} does not exist")
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as err:  # noqa: BLE001 - keras raises many types for a corrupt file
            raise DatasetError(f"encoder file {path!r} could not be loaded: {err}") from err
        return cls(model)


def _conv_init(seed: int, i: int):
    return keras.initializers.GlorotUniform(seed=seed * 1000 + i)


def _build_frame_model(input_shape, feature_dim: int, num_targets: int, seed: int) -> keras.Model:
    """Small 2-D CNN: 3 strided convs (32, 64, 128) -> flatten -> features (D) -> targets."""
    inputs = keras.Input(shape=input_shape, name="frames")
    h = inputs
    for i, filters in enumerate((32, 64, 128)):
        h = keras.layers.Conv2D(
            filters, 4, strides=2, padding="same", kernel_initializer=_conv_init(seed, i), name=f"conv{i}"
        )(h)
        h = keras.layers.Activation("elu", name=f"act{i}")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    features = keras.layers.Dense(
        feature_dim, activation="tanh", kernel_initializer=_conv_init(seed, 10), name=_FEATURES_LAYER
    )(h)
    outputs = keras.layers.Dense(num_targets, kernel_initializer=_conv_init(seed, 11), name="targets")(features)
    return keras.Model(inputs, outputs, name="frame_encoder")


def _build_clip_model(input_shape, feature_dim: int, num_targets: int, seed: int) -> keras.Model:
    """Small 3-D CNN: 3 convs (16, 32, 64; time stride 1, 2, 2; space stride 2) -> flatten -> features."""
    inputs = keras.Input(shape=input_shape, name="clips")
    h = inputs
    for i, (filters, t_stride) in enumerate(((16, 1), (32, 2), (64, 2))):
        h = keras.layers.Conv3D(
            filters,
            (3, 4, 4),
            strides=(t_stride, 2, 2),
            padding="same",
            kernel_initializer=_conv_init(seed, i),
            name=f"conv{i}",
        )(h)
        h = keras.layers.Activation("elu", name=f"act{i}")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    features = keras.layers.Dense(
        feature_dim, activation="tanh", kernel_initializer=_conv_init(seed, 10), name=_FEATURES_LAYER
    )(h)
    outputs = keras.layers.Dense(num_targets, kernel_initializer=_conv_init(seed, 11), name="targets")(features)
    return keras.Model(inputs, outputs, name="clip_encoder")


def _layout(images: np.ndarray) -> np.ndarray:
    """`[N, H, W, C]` -> `[N, 8*8]`: channel mean, area-resized to 8x8 (a coarse picture of the layout)."""
    gray = images.mean(axis=-1, keepdims=True)
    small = tf.image.resize(gray, (_LAYOUT_SIZE, _LAYOUT_SIZE), method="area")
    return np.asarray(small).reshape(images.shape[0], -1)


def _sorted_positions(positions: np.ndarray, height: int, width: int) -> np.ndarray:
    """`[N, balls, 2]` (row, col pixels) -> `[N, balls*2]` scaled to ~[-1, 1], balls sorted by (row, col)."""
    order = np.lexsort((positions[..., 1], positions[..., 0]), axis=-1)
    sorted_pos = np.take_along_axis(positions, order[..., None], axis=1)
    scale = np.array([height, width], dtype=np.float64)
    return (2.0 * sorted_pos / scale - 1.0).reshape(positions.shape[0], -1)


def _velocity_maps(positions: np.ndarray, height: int, width: int) -> np.ndarray:
    """Coarse motion field: `[N, T, balls, 2]` positions -> `[N, T-1, 8, 8, 2]` velocity maps.

    Each ball's velocity `p_{t+1} - p_t` (pixels/frame) is splatted onto an 8x8 grid of cell centres
    with a Gaussian bump (sigma = one cell) at `p_t`, and the balls are summed. Unlike a list of ball
    coordinates this target does not depend on the order of the balls, and it is local, so a small
    CNN learns it quickly.
    """
    n, t, balls, _ = positions.shape
    cell = np.array([height, width], dtype=np.float64) / _LAYOUT_SIZE
    centres_r = (np.arange(_LAYOUT_SIZE) + 0.5) * cell[0]  # pixel [i, j] is centred at (i + 0.5, j + 0.5)
    centres_c = (np.arange(_LAYOUT_SIZE) + 0.5) * cell[1]
    p = positions[:, :-1]  # [n, t-1, balls, 2]
    v = positions[:, 1:] - positions[:, :-1]
    dr = (centres_r[None, None, None, :] - p[..., 0, None]) / cell[0]  # [n, t-1, balls, 8]
    dc = (centres_c[None, None, None, :] - p[..., 1, None]) / cell[1]
    bump = np.exp(-0.5 * (dr[..., :, None] ** 2 + dc[..., None, :] ** 2))  # [n, t-1, balls, 8, 8]
    return np.einsum("ntbij,ntbk->ntijk", bump, v)


def _check_array(x, name: str, rank: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != rank or x.shape[0] < 2 or 0 in x.shape:
        raise DatasetError(f"{name} must have rank {rank} with N >= 2 examples, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DatasetError(f"{name} contains NaN or infinite values")
    return x


def _check_positions(positions, name: str, leading: tuple) -> np.ndarray:
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != len(leading) + 2 or positions.shape[: len(leading)] != leading or positions.shape[-1] != 2:
        raise DatasetError(
            f"{name} must have shape [{', '.join(map(str, leading))}, balls, 2], got shape {positions.shape}"
        )
    if not np.all(np.isfinite(positions)):
        raise DatasetError(f"{name} contains NaN or infinite values")
    return positions


def _check_training_args(feature_dim, steps, batch_size, learning_rate):
    if feature_dim < 1:
        raise ConfigError(f"feature_dim must be >= 1, got {feature_dim!r}")
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps!r}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size!r}")
    if not learning_rate > 0:
        raise ConfigError(f"learning_rate must be > 0, got {learning_rate!r}")


def _standardize_groups(groups: list[np.ndarray]) -> np.ndarray:
    """Z-scores every target column, then scales each group so that all groups weigh the same in the MSE.

    `groups`: arrays `[N, k_g]`. Column c of group g is multiplied by `sqrt(K / (G * k_g))` (K columns,
    G groups), so a group of 1000 layout pixels does not drown a group of 6 ball coordinates.
    """
    total = sum(g.shape[1] for g in groups)
    out = []
    for g in groups:
        z = (g - g.mean(axis=0)) / np.maximum(g.std(axis=0), 1e-6)
        out.append(z * np.sqrt(total / (len(groups) * g.shape[1])))
    return np.concatenate(out, axis=1).astype(np.float32)


def _fit(model: keras.Model, x: np.ndarray, y: np.ndarray, steps, batch_size, learning_rate, seed) -> list:
    """Regresses the prepared targets `y` with MSE and Adam for `steps` minibatch steps; returns the losses."""
    data = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(x.shape[0], seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(min(batch_size, x.shape[0]), drop_remainder=True)
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")

    class _Record(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.losses: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.losses.append(float(logs["loss"]))

    record = _Record()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False, callbacks=[record])
    if not np.all(np.isfinite(record.losses)):
        raise TrainingDivergedError(f"{model.name} training loss became non-finite; lower learning_rate")
    probe = keras.Model(model.inputs[0], model.get_layer(_FEATURES_LAYER).output)
    spread = np.asarray(probe(x[:256], training=False)).std(axis=0).max()
    if spread < 1e-4:
        raise ConfigError(
            f"{model.name} features are constant over the training examples: either learning_rate="
            f"{learning_rate!r} is too high or the training data has no variation"
        )
    return record.losses


def train_frame_encoder(
    frames,
    positions=None,
    *,
    feature_dim: int = 64,
    steps: int = 300,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> FrechetEncoder:
    """Trains the frame encoder on REAL frames with a supervised proxy task.

    Targets (each z-scored over the training set, each group weighted equally, MSE loss): the frame's
    coarse 8x8 layout picture and, if `positions` is given, the ball centres sorted by (row, col) and
    scaled to [-1, 1]. Features are the `feature_dim`-unit tanh penultimate layer. Regressing where the
    balls are makes the features sensitive to ball layout, count and shape (see the module docstring).

    Args:
      frames: `[N, H, W, C]` float32 in [-1, 1], real frames (N >= 2; a few thousand is plenty).
      positions: optional `[N, balls, 2]` float ground-truth centres (row, col pixels).
      feature_dim: D, size of the feature layer (64-128 is typical).
      steps, batch_size, learning_rate: Adam training schedule (a few hundred steps suffice on CPU).
      seed: seeds the initialisers and the shuffling.

    Returns:
      A `FrechetEncoder` (kind "frame_encoder") with `loss_history`.
    """
    _check_training_args(feature_dim, steps, batch_size, learning_rate)
    x = _check_array(frames, "frames", 4)
    targets = [_layout(x)]
    if positions is not None:
        pos = _check_positions(positions, "positions", (x.shape[0],))
        targets.append(_sorted_positions(pos, x.shape[1], x.shape[2]))
    targets = _standardize_groups(targets)
    model = _build_frame_model(x.shape[1:], feature_dim, targets.shape[1], seed)
    losses = _fit(model, x, targets, steps, batch_size, learning_rate, seed)
    return FrechetEncoder(model, losses)


def train_clip_encoder(
    clips,
    positions=None,
    *,
    feature_dim: int = 64,
    steps: int = 300,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> FrechetEncoder:
    """Trains the clip encoder on REAL clips with a supervised proxy task.

    Targets (each z-scored, each group weighted equally, MSE loss): every frame's coarse 8x8 layout
    picture and the 8x8 picture of every frame difference; if `positions` is given, also a coarse 8x8
    motion field per step (each ball's velocity splatted at its position, see `_velocity_maps`).
    Regressing where the balls are and how fast they move where makes the features sensitive to how
    balls move (straight, steady, no teleporting), not only to how single frames look.

    Args:
      clips: `[N, T, H, W, C]` float32 in [-1, 1], real clips (N >= 2, T >= 2). Generated clips must have
        the same T, H, W, C to be encoded.
      positions: optional `[N, T, balls, 2]` float ground-truth centres (row, col pixels).
      feature_dim, steps, batch_size, learning_rate, seed: as in `train_frame_encoder`.

    Returns:
      A `FrechetEncoder` (kind "clip_encoder") with `loss_history`.
    """
    _check_training_args(feature_dim, steps, batch_size, learning_rate)
    x = _check_array(clips, "clips", 5)
    n, t, h, w, c = x.shape
    if t < 2:
        raise DatasetError(f"clips must have T >= 2 frames, got shape {x.shape}")
    layout = _layout(x.reshape(n * t, h, w, c)).reshape(n, t, -1)
    targets = [layout.reshape(n, -1), (layout[:, 1:] - layout[:, :-1]).reshape(n, -1)]
    if positions is not None:
        pos = _check_positions(positions, "positions", (n, t))
        targets.append(_velocity_maps(pos, h, w).reshape(n, -1))
    targets = _standardize_groups(targets)
    model = _build_clip_model(x.shape[1:], feature_dim, targets.shape[1], seed)
    losses = _fit(model, x, targets, steps, batch_size, learning_rate, seed)
    return FrechetEncoder(model, losses)


def load_or_train_encoder(cache_dir: str, name: str, train_fn: Callable[[], FrechetEncoder]) -> FrechetEncoder:
    """Returns the encoder cached as `<cache_dir>/<name>.keras`, training and saving it on first use.

    Use one name per real dataset and encoder kind (e.g. "balls32_frame_encoder") so that every
    evaluation against that dataset uses the very same encoder.

    Args:
      cache_dir: directory of cached encoders (created if missing).
      name: file stem, no path separators.
      train_fn: called with no arguments when the file does not exist; returns the trained encoder
        (e.g. `lambda: train_frame_encoder(real_frames, real_positions)`).
    """
    if not name or os.sep in name or (os.altsep and os.altsep in name) or name.startswith("."):
        raise ConfigError(f"encoder name must be a plain file stem, got {name!r}")
    path = os.path.join(cache_dir, f"{name}.keras")
    if os.path.isfile(path):
        return FrechetEncoder.load(path)
    encoder = train_fn()
    if not isinstance(encoder, FrechetEncoder):
        raise ConfigError(f"train_fn for encoder {name!r} must return a FrechetEncoder, got {type(encoder)}")
    encoder.save(path)
    return encoder


def encoder_frechet_distance(encoder: FrechetEncoder, real, generated, batch_size: int = 128) -> float:
    """Fréchet distance between the encoder features of `real` and `generated`.

    Args:
      encoder: a `FrechetEncoder` trained on real data.
      real, generated: `[N, ...]` and `[M, ...]` inputs of the encoder's per-example shape, in [-1, 1].

    Returns:
      `frechet_distance(encoder.features(real), encoder.features(generated))`.
    """
    return frechet_distance(encoder.features(real, batch_size), encoder.features(generated, batch_size))
