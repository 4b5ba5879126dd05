"""Command lines of the dataset generators (run from the repository root; the code lives in `tfvidgan.data`).

    python -m data_tools.make_bouncing_balls --output_dir=... [flags]
    python -m data_tools.make_cup_pairs --scenes=... --output_dir=... [flags]
"""
