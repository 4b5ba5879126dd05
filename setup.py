"""Installs the `tfvidgan` library (the `data_tools/` command lines run from the repository root)."""
from setuptools import find_packages, setup

setup(
    name="tfvidgan",
    version="0.1.0",
    description=(
        "Video generation by navigating a GAN's image manifold, and learned "
        "reconstruction of compressed ultrafast imaging (CUP), in TensorFlow/Keras 3."
    ),
    python_requires=">=3.10",
    packages=find_packages(include=["tfvidgan", "tfvidgan.*"]),
    # `tensorflow` (not `tensorflow-cpu`) so that GPU users get a GPU-capable
    # build; `pip install tfvidgan[and-cuda]` also pulls the CUDA libraries.
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tensorboard>=2.21,<2.22",
        "numpy>=1.26,<3",
        "absl-py>=2.1,<3",
        "scikit-learn>=1.4,<2",
        "scipy>=1.11,<2",
        "Pillow>=10,<14",
        "google-crc32c>=1.5,<2",
        # TF Serving protos (warm-up requests in exports, the gRPC client); matches TensorFlow 2.21.
        "tensorflow-serving-api>=2.21,<2.22",
    ],
    extras_require={
        "and-cuda": ["tensorflow[and-cuda]>=2.21,<2.22"],
        # Reading your own video files (`python -m data_tools.make_video_dataset`): PyAV ships FFmpeg in its wheel.
        "video": ["av>=14,<20"],
        "test": ["pytest>=8,<10", "pytest-timeout>=2.3,<3", "pytest-xdist>=3.5,<4", "av>=14,<20", "ruff==0.17.6"],
    },
)
