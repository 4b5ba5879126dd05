"""Recurrent sequence generator: noise -> a latent trajectory `[B, T, Z]` for a frozen frames generator.

Architecture (per sample; nothing ever mixes the batch):

    noise [B, noise_dim] -> MLP (2 Dense + ReLU) -> code [B, hidden_units]
    code broadcast over T, concatenated with step_noise [B, T, step_noise_dim] (step_noise_dim may be 0)
    -> num_layers (bi)directional LSTM/GRU layers (return_sequences) -> Dense(Z) per step
    -> latent constraint -> latents [B, T, Z]

Trajectory parameterisation:
  * "absolute" (default of the paper): the per-step Dense output IS the latent z_t.
  * "residual": a bounded step per time step, z_t = z_{t-1} + Δ_t, in the spirit of MoCoGAN-HD's
    residual motion codes. z_0 comes from the clip code (Dense → latent); Δ_t = m · tanh(|u_t|) · u_t / |u_t|
    with u_t the per-step Dense output, so |Δ_t| < m = `max_step` (in latent-norm units; the prior's
    typical radius is sqrt(Z)). z_t = z_0 + Σ_{s<=t, s>=1} Δ_s, then the latent constraint. Paths cannot
    jump: consecutive latents differ by at most `max_step` before the constraint (which can only shrink
    that difference by a bounded factor near the typical set). With `bidirectional=False` the model is
    causal and rolls out any length.

T is a dynamic dimension: the same weights produce trajectories of any length (train on 16 or 40
steps, sample 30 or more). The number of steps is taken from `step_noise`.

Initial state:
  * "zeros" (default): every recurrent layer starts from a zero state, so every clip's recurrent dynamics
    start at the same point and any oscillation they settle into is in phase across clips (measured: a
    phase-locked "clock" of the mean latent step, period 58-78 frames, that makes long videos drift;
    `benchmarks/latent_clock.py`).
  * "noise": each recurrent layer (each direction) starts from a fixed random projection of the clip noise,
    x = noise · W / sqrt(noise_dim), W ~ N(0, 1) frozen: h_0 = tanh(x_h) (and, for an LSTM, c_0 = x_c), as
    MoCoGAN draws its motion RNN's initial state. Clips start at different points of the dynamics (different
    phases of any oscillation), and training clips from t = 0 then cover those phases. The projection is not
    trainable, so the generator cannot learn to collapse it to a common start.

Burn-in (`burn_in_steps` = W >= 0): the recurrent layers run W extra steps before the first emitted one
(their inputs there: the clip code and zero step noise) and those W outputs are dropped, so frame 0 is
rendered from the dynamics' W-th step, not from its start state. A start state far from the states the
dynamics visit (the noise initial state draws c_0 ~ N(0, 1) per unit) otherwise shows up in the first
latent; measured on a noise-state model: 69 % of first frames had the expected ball count against 90 % for
frames 5-30. W = 0 (default) emits from the first step. The output still has T steps; a causal model
stays causal. W changes the functional model's layers, so a checkpoint restores only into a model with the same
W (the run-config check refuses a resume with another `--burn_in_steps`). Trained from step 0 with W = 8 (one
run, docs/experiments_video.md) the untrained dynamics settled within the burn-in, the first clips hardly
moved, and the run ended worse than without it. A burn-in for sampling only (`--sample_burn_in_steps` of the
video trainer) builds a second model with the larger W from the trained model's own layers
(`share_layers_of`): it holds no variables of its own, so it always emits from the current weights.

Per-step noise: with `step_noise_dim` = 0 the step noise is an empty `[B, T, 0]` tensor that only carries
T, and the trajectory is a deterministic function of the clip noise: the recurrent layers run as an
autonomous dynamical system started from the clip code, which is how bouncing balls move (the initial
positions and velocities decide the whole clip). With per-step noise the model can (and, measured, does)
use the noise to move, which shows up as wobble.

Latent constraint (keeps the emitted latents where the frames generator was trained):
  * "standardize": each step's Z vector of each sample is shifted and scaled to zero mean and unit
    variance across its Z entries. A draw from N(0, I_Z) has exactly those statistics up to
    O(1/sqrt(Z)), and norm ~ sqrt(Z): the output lands in the prior's typical set.
  * "tanh": squashes into (-1, 1), for a frames generator trained with a uniform prior.
  * "none": unconstrained linear output.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from tfvidgan.errors import ConfigError

__all__ = [
    "build_sequence_generator",
    "sample_sequence_noise",
    "sequence_generator_dims",
    "BroadcastOverTime",
    "StandardizeLatent",
    "ResidualTrajectory",
    "TRAJECTORIES",
    "INITIAL_STATES",
    "NoiseInitialState",
    "PrependZeroSteps",
    "DropLeadingSteps",
]

_CELLS = ("lstm", "gru")
_CONSTRAINTS = ("standardize", "tanh", "none")
TRAJECTORIES = ("absolute", "residual")
INITIAL_STATES = ("zeros", "noise")


@keras.saving.register_keras_serializable(package="tfvidgan")
class NoiseInitialState(keras.layers.Layer):
    """`noise [B, D] -> [state_0, ..., state_{n-1}]`, each `[B, units]` float32: a frozen random projection.

    x_i = noise · W_i / sqrt(D) with W_i ~ N(0, 1) drawn once from `seed` (non-trainable, saved with the
    model), so x_i ~ N(0, 1) per unit for a N(0, I) noise. State i is tanh(x_i) when `squash[i]` (an RNN's
    hidden output h, in (-1, 1)) and x_i otherwise (an LSTM's cell state c).
    """

    def __init__(self, units: int, squash: tuple[bool, ...] = (True,), seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.squash = tuple(bool(v) for v in squash)
        self.seed = int(seed)

    def build(self, input_shape):
        self.projection = self.add_weight(
            name="projection", shape=(int(input_shape[-1]), self.units * len(self.squash)),
            initializer=keras.initializers.RandomNormal(stddev=1.0, seed=self.seed), trainable=False)

    def call(self, noise):
        x = ops.matmul(noise, ops.cast(self.projection, noise.dtype)) / float(self.projection.shape[0]) ** 0.5
        parts = ops.split(x, len(self.squash), axis=-1)
        return [ops.tanh(p) if squash else p for p, squash in zip(parts, self.squash)]

    def compute_output_shape(self, input_shape):
        return [(input_shape[0], self.units)] * len(self.squash)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "squash": list(self.squash), "seed": self.seed}


@keras.saving.register_keras_serializable(package="tfvidgan")
class PrependZeroSteps(keras.layers.Layer):
    """`[B, T, C] -> [B, steps + T, C]`: `steps` all-zero time steps put in front (same dtype)."""

    def __init__(self, steps: int, **kwargs):
        super().__init__(**kwargs)
        self.steps = int(steps)

    def call(self, x):
        return ops.pad(x, [[0, 0], [self.steps, 0], [0, 0]])

    def compute_output_shape(self, input_shape):
        t = input_shape[1]
        return (input_shape[0], None if t is None else t + self.steps, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "steps": self.steps}


@keras.saving.register_keras_serializable(package="tfvidgan")
class DropLeadingSteps(keras.layers.Layer):
    """`[B, steps + T, C] -> [B, T, C]`: drops the first `steps` time steps (the inverse of `PrependZeroSteps`'s
    shape change)."""

    def __init__(self, steps: int, **kwargs):
        super().__init__(**kwargs)
        self.steps = int(steps)

    def call(self, x):
        return x[:, self.steps:]

    def compute_output_shape(self, input_shape):
        t = input_shape[1]
        return (input_shape[0], None if t is None else t - self.steps, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "steps": self.steps}


@keras.saving.register_keras_serializable(package="tfvidgan")
class ResidualTrajectory(keras.layers.Layer):
    """`[z0 [B, Z], u [B, T, Z]] -> [B, T, Z]`: z_t = z0 + Σ_{1<=s<=t} Δ_s, Δ_s = m·tanh(|u_s|)·u_s/|u_s|.

    Every step has norm < m = `max_step`; u_0 is ignored (z_0 = z0). Float32, no trainable weights.
    """

    def __init__(self, max_step: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if not max_step > 0:
            raise ConfigError(f"max_step must be > 0, got {max_step!r} (flag --max_step)")
        self.max_step = float(max_step)

    def call(self, inputs):
        z0, u = inputs
        norm = ops.sqrt(ops.sum(ops.square(u), axis=-1, keepdims=True) + 1e-12)
        steps = self.max_step * ops.tanh(norm) * u / norm
        steps = ops.concatenate([ops.zeros_like(steps[:, :1]), steps[:, 1:]], axis=1)
        return ops.expand_dims(z0, 1) + ops.cumsum(steps, axis=1)

    def compute_output_shape(self, input_shapes):
        return input_shapes[1]

    def get_config(self):
        return {**super().get_config(), "max_step": self.max_step}


@keras.saving.register_keras_serializable(package="tfvidgan")
class BroadcastOverTime(keras.layers.Layer):
    """Repeats a per-sample code over the time axis of a reference sequence.

    Call with `[code [B, D], reference [B, T, ...]]`; returns `[B, T, D]` with `out[b, t] = code[b]`.
    """

    def call(self, inputs):
        code, reference = inputs
        steps = ops.shape(reference)[1]
        return ops.repeat(ops.expand_dims(code, 1), steps, axis=1)

    def compute_output_shape(self, input_shapes):
        code_shape, reference_shape = input_shapes
        return (code_shape[0], reference_shape[1], code_shape[-1])


@keras.saving.register_keras_serializable(package="tfvidgan")
class StandardizeLatent(keras.layers.Layer):
    """Per sample and per step, normalises the last axis to zero mean and unit variance.

    `[B, T, Z] -> [B, T, Z]`: `(z - mean_Z(z)) / sqrt(var_Z(z) + epsilon)`. No trainable weights.
    """

    def __init__(self, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        mean = ops.mean(inputs, axis=-1, keepdims=True)
        centred = inputs - mean
        variance = ops.mean(ops.square(centred), axis=-1, keepdims=True)
        return centred * ops.rsqrt(variance + self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def build_sequence_generator(
    latent_dim: int,
    noise_dim: int = 64,
    step_noise_dim: int = 8,
    hidden_units: int = 256,
    num_layers: int = 2,
    cell: str = "lstm",
    bidirectional: bool = True,
    latent_constraint: str = "standardize",
    trajectory: str = "absolute",
    max_step: float = 1.0,
    initial_state: str = "zeros",
    burn_in_steps: int = 0,
    name: str = "sequence_generator",
    share_layers_of: keras.Model | None = None,
) -> keras.Model:
    """Builds the recurrent generator of latent trajectories.

    Args:
      latent_dim: Z, the frames generator's latent size.
      noise_dim: size of the per-sample noise (what the whole clip is about).
      step_noise_dim: size of the per-step noise (small variations along the way), >= 0; 0 = none (the
        trajectory is a deterministic function of `noise`; `step_noise` is then `[B, T, 0]`).
      hidden_units: width of the MLP and of each RNN direction.
      num_layers: number of stacked RNN layers, >= 1.
      cell: "lstm" or "gru".
      bidirectional: whether each RNN layer also runs backwards in time (outputs concatenated).
      latent_constraint: "standardize" (prior N(0, I)), "tanh" (uniform prior on [-1, 1]) or "none".
      trajectory: "absolute" or "residual" (bounded steps z_t = z_{t-1} + Δ_t; see the module docstring).
      max_step: bound m on every step's norm for "residual" (latent units), > 0.
      initial_state: "zeros" or "noise" (each recurrent layer starts from a frozen random projection of
        `noise`; see the module docstring).
      burn_in_steps: W >= 0 recurrent steps run and dropped before the first emitted latent (see the module
        docstring); the output keeps T steps.
      name: Keras model name.
      share_layers_of: None, or a model built by this function with the same arguments except
        `burn_in_steps` and `name`: its layers (and so its variables) are reused instead of new ones, e.g. to
        sample a trained model with a longer burn-in. The new model owns no variables.

    Returns:
      A functional `keras.Model` with inputs `{"noise": [B, noise_dim], "step_noise": [B, T, step_noise_dim]}`
      (float32, T dynamic) and output latents `[B, T, latent_dim]` float32. Sample b's output depends
      only on sample b's inputs.

    Raises:
      ConfigError: an unknown `cell` / `latent_constraint` or an out-of-range size, naming the field.
    """
    for field, value, minimum in (
        ("latent_dim", latent_dim, 1),
        ("noise_dim", noise_dim, 1),
        ("step_noise_dim", step_noise_dim, 0),
        ("hidden_units", hidden_units, 1),
        ("num_layers", num_layers, 1),
        ("burn_in_steps", burn_in_steps, 0),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            flag = "" if field == "latent_dim" else f" (flag --{field})"  # latent_dim comes from the FG
            raise ConfigError(f"{field} must be an integer >= {minimum}, got {value!r}{flag}")
    if cell not in _CELLS:
        raise ConfigError(f"cell must be one of {_CELLS}, got {cell!r}")
    if latent_constraint not in _CONSTRAINTS:
        raise ConfigError(f"latent_constraint must be one of {_CONSTRAINTS}, got {latent_constraint!r}")
    if trajectory not in TRAJECTORIES:
        raise ConfigError(f"trajectory must be one of {TRAJECTORIES}, got {trajectory!r} (flag --trajectory)")
    if initial_state not in INITIAL_STATES:
        raise ConfigError(f"initial_state must be one of {INITIAL_STATES}, got {initial_state!r} "
                          f"(flag --initial_state)")
    if latent_constraint == "standardize" and latent_dim < 2:
        raise ConfigError(f"latent_constraint 'standardize' needs latent_dim >= 2, got {latent_dim!r}")

    def layer(layer_name: str, make):
        """`make()`, or the layer of that name of `share_layers_of`."""
        if share_layers_of is None:
            return make()
        try:
            return share_layers_of.get_layer(layer_name)
        except ValueError as err:
            raise ConfigError(f"share_layers_of={share_layers_of.name!r} has no layer {layer_name!r}: it was "
                              f"built with other sequence-generator options") from err

    noise = keras.Input(shape=(noise_dim,), name="noise")
    step_noise = keras.Input(shape=(None, step_noise_dim), name="step_noise")

    code = layer("code_dense0", lambda: keras.layers.Dense(hidden_units, activation="tanh", name="code_dense0"))(noise)
    code = layer("code_dense1", lambda: keras.layers.Dense(hidden_units, activation="tanh", name="code_dense1"))(code)
    # The recurrent layers' input: W burn-in steps of zero step noise, then the T given steps.
    steps = PrependZeroSteps(burn_in_steps, name="burn_in")(step_noise) if burn_in_steps else step_noise
    h = BroadcastOverTime(name="broadcast_code")([code, steps])
    h = keras.layers.Concatenate(axis=-1, name="code_and_step_noise")([h, steps])
    rnn_class = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
    # An LSTM's state is [h, c], a GRU's [h]; a bidirectional layer takes the forward then the backward states.
    squash = ((True, False) if cell == "lstm" else (True,)) * (2 if bidirectional else 1)
    for i in range(num_layers):
        if bidirectional:
            rnn = layer(f"bi_{cell}{i}", lambda: keras.layers.Bidirectional(
                rnn_class(hidden_units, return_sequences=True, name=f"{cell}{i}"), merge_mode="concat",
                name=f"bi_{cell}{i}"))
        else:
            rnn = layer(f"{cell}{i}", lambda: rnn_class(hidden_units, return_sequences=True, name=f"{cell}{i}"))
        if initial_state == "noise":
            start = layer(f"initial_state{i}", lambda: NoiseInitialState(
                hidden_units, squash, seed=i, name=f"initial_state{i}"))(noise)
            h = rnn(h, initial_state=start)
        else:
            h = rnn(h)
    latents = layer("to_latent", lambda: keras.layers.Dense(latent_dim, name="to_latent"))(h)  # per step, per sample
    if burn_in_steps:
        latents = DropLeadingSteps(burn_in_steps, name="drop_burn_in")(latents)
    if trajectory == "residual":
        start = layer("to_start_latent", lambda: keras.layers.Dense(latent_dim, name="to_start_latent"))(code)  # z_0
        latents = layer("residual_trajectory", lambda: ResidualTrajectory(max_step, name="residual_trajectory"))(
            [start, latents])
    if latent_constraint == "standardize":
        latents = StandardizeLatent(name="standardize")(latents)
    elif latent_constraint == "tanh":
        latents = keras.layers.Activation("tanh", name="tanh")(latents)
    model = keras.Model({"noise": noise, "step_noise": step_noise}, latents, name=name)
    if share_layers_of is not None and {v.path for v in model.weights} != {v.path for v in share_layers_of.weights}:
        raise ConfigError(f"share_layers_of={share_layers_of.name!r} was built with other sequence-generator "
                          f"options: its variables differ from the new model's")
    return model


def sequence_generator_dims(model: keras.Model) -> tuple[int, int, int]:
    """`(noise_dim, step_noise_dim, latent_dim)` of a model built by `build_sequence_generator`."""
    shapes = {t.name.split(":")[0]: t.shape for t in model.inputs}
    try:
        noise_dim = int(shapes["noise"][-1])
        step_noise_dim = int(shapes["step_noise"][-1])
    except KeyError as err:
        raise ConfigError(f"model {model.name!r} has no inputs named 'noise' and 'step_noise'") from err
    return noise_dim, step_noise_dim, int(model.outputs[0].shape[-1])


def sample_sequence_noise(batch: int, steps: int, seed, noise_dim: int, step_noise_dim: int) -> dict:
    """Stateless, seeded standard-normal inputs for the sequence generator.

    The same `(seed, batch, steps, dims)` always gives the same numbers (on every replica and run), so
    in replica context fold the replica id into the seed (e.g. `[seed, replica_id]`) to give each
    replica different noise.

    Args:
      batch: B >= 1.
      steps: T >= 1.
      seed: an int, or a shape-[2] int tensor/sequence (a `tf.random` stateless seed).
      noise_dim, step_noise_dim: the generator's input sizes (see `sequence_generator_dims`);
        `step_noise_dim` may be 0 (an empty `[B, T, 0]` step noise).

    Returns:
      `{"noise": [B, noise_dim] float32, "step_noise": [B, T, step_noise_dim] float32}`, N(0, 1) entries,
      ready to pass to the model.
    """
    sizes = (("batch", batch, 1), ("steps", steps, 1), ("noise_dim", noise_dim, 1),
             ("step_noise_dim", step_noise_dim, 0))
    for field, value, minimum in sizes:
        if isinstance(value, int) and value < minimum:
            raise ConfigError(f"{field} must be >= {minimum}, got {value!r}")
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank == 0:
        seed = tf.stack([seed, tf.constant(0, tf.int64)])
    if seed.shape != (2,):
        raise ConfigError(f"seed must be an int or a shape-[2] integer tensor, got shape {seed.shape}")
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    return {
        "noise": tf.random.stateless_normal([batch, noise_dim], seed=seeds[0], dtype=tf.float32),
        "step_noise": tf.random.stateless_normal([batch, steps, step_noise_dim], seed=seeds[1], dtype=tf.float32),
    }
