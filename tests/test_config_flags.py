"""One source for every default: each trainer flag that feeds a config field has that field's default, the
model builders' defaults are the configs', and each task's `build_inputs` yields the documented batches."""
import dataclasses
import inspect

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from tfvidgan import common_flags, train_frames, train_reconstructor, train_video
from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_dataset
from tfvidgan.data.cup_simulation import CupPairsConfig, generate_cup_pairs
from tfvidgan.errors import ConfigError
from tfvidgan.metrics.quality_probe import ProbeConfig
from tfvidgan.models import ensemble_discriminator, frames_generator, reconstructor, unfolded
from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask
from tfvidgan.training.loop import InputConfig, LoopConfig
from tfvidgan.training.reconstruction_task import ReconstructionConfig, ReconstructionTask
from tfvidgan.training.video_task import VideoGanConfig, VideoGanTask

# Fields set from the dataset (or its metadata), not by a flag.
FROM_DATA = {
    "train_frames": {"image_size", "channels"},
    "train_video": set(),
    # The reconstructor's critic is one fully convolutional discriminator: only --loss is exposed.
    "train_reconstructor": {"num_frames", "height", "width", "mask", "mask_fill", "photons", "read_noise",
                            "adversarial.combiner", "adversarial.gman_alpha", "adversarial.hypervolume_delta",
                            "adversarial.hypervolume_normalize", "adversarial.discriminator_steps",
                            "adversarial.joint_batch", "adversarial.r1_weight"},
}
TRAINERS = [(train_frames, FramesGanConfig), (train_video, VideoGanConfig),
            (train_reconstructor, ReconstructionConfig)]


def _defined(module) -> flags.FlagValues:
    values = flags.FlagValues()
    module.define_flags(values)
    return values


def _field_paths(cls, defaults=None, prefix=""):
    """(dotted path, default) of every leaf field of a config dataclass (None if required); a nested config's
    fields default to the values of the parent field's default instance."""
    for field in dataclasses.fields(cls):
        if defaults is not None:
            default = getattr(defaults, field.name)
        elif field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = None
        if dataclasses.is_dataclass(default):
            yield from _field_paths(type(default), default, f"{prefix}{field.name}.")
        else:
            yield f"{prefix}{field.name}", default


def _feeding(specs) -> dict:
    """{field path: flag name}."""
    return {(spec.field if isinstance(spec, common_flags.FlagSpec) and spec.field else name): name
            for name, spec in specs.items()}


@pytest.mark.parametrize("module,config_cls", TRAINERS, ids=lambda x: getattr(x, "__name__", ""))
def test_every_config_field_flag_has_the_dataclass_default(module, config_cls):
    values = _defined(module)
    feeding = _feeding(module.config_flags())
    checked = 0
    for path, default in _field_paths(config_cls):
        if path in FROM_DATA[module.__name__.rsplit(".", 1)[-1]]:
            assert path not in feeding, f"{path} is set from the data but also has a flag"
            continue
        assert path in feeding, f"{config_cls.__name__}.{path} has no flag (and is not set from the data)"
        flag = feeding[path]
        assert values[flag].default == default, (flag, values[flag].default, default)
        checked += 1
    assert checked == len(feeding)  # and every flag of the table feeds a real field


@pytest.mark.parametrize("module,config_cls", TRAINERS, ids=lambda x: getattr(x, "__name__", ""))
def test_parsed_defaults_build_the_default_config(module, config_cls):
    values = _defined(module)
    values(["prog"])
    kwargs = common_flags.config_kwargs(config_cls, values, module.config_flags())
    required = {f.name: None for f in dataclasses.fields(config_cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    mask = np.zeros((4, 4), np.float32)
    data = dict(num_frames=2, height=4, width=4, mask=mask) if config_cls is ReconstructionConfig else {}
    required.update(data)
    if config_cls is VideoGanConfig:
        required["frames_generator"] = "fg"
        kwargs["frames_generator"] = "fg"
    built, default = config_cls(**{**required, **kwargs}), config_cls(**required)
    assert flatten(built) == flatten(default)


def flatten(config):
    from tfvidgan.training.run_lock import flatten_config
    return flatten_config(config)


@pytest.mark.parametrize("module", [m for m, _ in TRAINERS], ids=lambda m: m.__name__)
def test_loop_input_and_probe_flags_have_their_dataclass_defaults_except_the_quick_start(module):
    values = _defined(module)
    assert set(module.QUICK_START) <= set(common_flags.QUICK_START_FLAGS)
    for cls, specs, not_flags in ((LoopConfig, common_flags.LOOP_FLAGS, {"export", "flags", "preemption_grace_seconds"}),
                                  (InputConfig, common_flags.INPUT_FLAGS, {"data"}),
                                  (ProbeConfig, common_flags.PROBE_FLAGS,
                                   {"data", "encoder_samples", "encoder_steps", "seed"})):
        feeding = _feeding(specs)
        for path, default in _field_paths(cls):
            if path in not_flags:
                continue
            flag = feeding[path]
            expected = module.QUICK_START[flag] if flag in module.QUICK_START else default
            assert values[flag].default == expected, (flag, values[flag].default, expected)


def test_optimizer_flags_use_one_vocabulary():
    for module, config_cls in TRAINERS:
        values = _defined(module)
        optimizer_fields = [f.name for f in dataclasses.fields(config_cls) if f.name.endswith("optimizer")]
        feeding = _feeding(module.config_flags())
        for field in optimizer_fields:
            names = {feeding[f"{field}.{leaf}"] for leaf in ("name", "learning_rate", "beta_1")}
            prefixes = {n.rsplit("_", 1)[0] for n in names}
            assert len(prefixes) == 1, names
            prefix = prefixes.pop()
            assert names == {f"{prefix}_optimizer", f"{prefix}_lr", f"{prefix}_beta1"}
            assert all(n in values for n in names)


def _signature_default(function, name):
    return inspect.signature(function).parameters[name].default


def test_model_builders_default_to_the_configs():
    frames, video, recon = FramesGanConfig(), VideoGanConfig(frames_generator="fg"), ReconstructionConfig
    d = ensemble_discriminator
    assert _signature_default(d.build_frame_discriminators, "base_filters") == frames.discriminator_filters
    assert _signature_default(d.build_frame_discriminators, "normalization") == frames.discriminator_normalization
    assert _signature_default(d.build_frame_discriminators, "head") == frames.discriminator_head
    assert _signature_default(d.build_video_discriminators, "base_filters") == video.discriminator_filters
    assert _signature_default(d.build_video_discriminators, "normalization") == video.discriminator_normalization
    assert _signature_default(reconstructor.build_reconstructor, "base_filters") == recon.base_filters
    assert _signature_default(reconstructor.build_reconstructor, "depth") == recon.depth
    assert _signature_default(reconstructor.build_reconstruction_critic, "base_filters") == recon.discriminator_filters
    for arg, field in (("stages", "unfolded_stages"), ("filters", "unfolded_filters"),
                       ("conv_layers", "unfolded_conv_layers"), ("conv", "unfolded_conv"),
                       ("share_weights", "unfolded_share_weights"), ("levels", "unfolded_levels"),
                       ("memory", "unfolded_memory")):
        assert _signature_default(unfolded.build_unfolded_reconstructor, arg) == getattr(recon, field)
    assert _signature_default(frames_generator.build_frames_generator, "base_filters") == frames.generator_filters
    from tfvidgan.models.sequence_generator import build_sequence_generator
    for field in ("noise_dim", "step_noise_dim", "hidden_units", "num_layers", "cell", "bidirectional",
                  "latent_constraint", "trajectory", "max_step", "initial_state", "burn_in_steps"):
        assert _signature_default(build_sequence_generator, field) == getattr(video, field), field


def test_frames_generator_builder_normalization_defaults_to_the_config():
    assert (_signature_default(frames_generator.build_frames_generator, "normalization")
            == FramesGanConfig().generator_normalization)


# ----------------------------------------------------------------------------- build_inputs


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    balls = str(root / "bb")
    generate_dataset(BouncingBallsConfig(num_scenes=6, num_frames=8, size=32, shards=2, seed=0), balls,
                     workers=1, show_progress=False)
    cup = str(root / "cup")
    generate_cup_pairs(CupPairsConfig(scenes=balls, num_frames=4, clips_per_scene=1, shards=1, batch_size=6), cup)
    return balls, cup


def _context(replicas):
    return tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=replicas)


@pytest.mark.parametrize("replicas", [1, 2])
def test_build_inputs_yield_per_replica_batches(datasets, replicas):
    balls, cup = datasets
    per_replica = 4 // replicas
    frames = FramesGanTask(FramesGanConfig(), inputs=InputConfig(data=balls, batch_size=4, seed=1))
    batch = next(iter(frames.build_inputs(_context(replicas), start_step=3)))
    assert batch.shape == (per_replica, 32, 32, 1) and batch.dtype == tf.float32
    assert -1.0 <= float(tf.reduce_min(batch)) and float(tf.reduce_max(batch)) <= 1.0

    video = VideoGanTask(VideoGanConfig(frames_generator="unused", clip_length=5),
                         inputs=InputConfig(data=balls, batch_size=4))
    clips = next(iter(video.build_inputs(_context(replicas), 0)))
    assert clips.shape == (per_replica, 5, 32, 32, 1) and clips.dtype == tf.float32

    mask = np.ones((32, 32), np.float32)
    recon = ReconstructionTask(ReconstructionConfig(num_frames=4, height=32, width=32, mask=mask),
                               inputs=InputConfig(data=cup, batch_size=4))
    sensed, scene = next(iter(recon.build_inputs(_context(replicas), 0)))
    assert sensed.shape == (per_replica, 35, 32, 1) and scene.shape == (per_replica, 4, 32, 32, 1)
    assert sensed.dtype == scene.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(scene)) and float(tf.reduce_max(scene)) <= 1.0
    preview_sensed, preview_scene = recon.preview_batch()
    assert preview_sensed.shape == (4, 35, 32, 1) and preview_scene.shape == (4, 4, 32, 32, 1)


def test_build_inputs_is_seeded_by_the_start_step(datasets):
    balls, _ = datasets
    task = FramesGanTask(FramesGanConfig(), inputs=InputConfig(data=balls, batch_size=4, seed=5))
    first = next(iter(task.build_inputs(None, 0))).numpy()
    np.testing.assert_array_equal(first, next(iter(task.build_inputs(None, 0))).numpy())
    assert not np.array_equal(first, next(iter(task.build_inputs(None, 7))).numpy())


def test_build_inputs_without_an_input_config_and_an_uneven_batch_are_named(datasets):
    with pytest.raises(ConfigError, match="FramesGanTask has no InputConfig"):
        FramesGanTask(FramesGanConfig()).build_inputs(None, 0)
    task = FramesGanTask(FramesGanConfig(), inputs=InputConfig(data=datasets[0], batch_size=3))
    with pytest.raises(ConfigError, match=r"--batch_size=3 must be a positive multiple of the number of replicas \(2\)"):
        task.build_inputs(_context(2), 0)


@pytest.mark.parametrize("module,prefixes", [(train_frames, ("frames_",)), (train_video, ("video_",)),
                                             (train_reconstructor, ("cup",))], ids=lambda x: getattr(x, "__name__", ""))
def test_shipped_trainer_configs_parse(module, prefixes):
    """Every configs/<trainer>*.cfg names only flags the trainer defines (their values pass its validators)."""
    import glob
    import os
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
    paths = sorted(p for p in glob.glob(os.path.join(root, "*.cfg")) if os.path.basename(p).startswith(prefixes))
    assert paths
    for path in paths:
        values = _defined(module)
        values(["prog", f"--flagfile={path}"])
