"""Run SCALE-Sim once; executed by the SCALE-Sim interpreter, never imported by edgetune.

Usage: python _scalesim_worker.py CONFIG TOPOLOGY LAYOUT OUTPUT_DIR

SCALE-Sim 3.0 crashes under numpy 2 and edgetune's environment needs numpy 2, so it lives in
its own small environment (numpy<2) and this script is its only entry point: standard library
plus scalesim, nothing from edgetune.
"""

import os
import sys


def main(argv: list) -> int:
    if len(argv) != 4:
        print("usage: _scalesim_worker.py CONFIG TOPOLOGY LAYOUT OUTPUT_DIR", file=sys.stderr)
        return 2
    config, topology, layout, output_dir = argv
    for path in (config, topology, layout):
        if not os.path.isfile(path):  # SCALE-Sim itself would print and exit() with status 0
            print(f"missing input file: {path}", file=sys.stderr)
            return 2
    os.environ.setdefault("TQDM_DISABLE", "1")  # SCALE-Sim opens a progress bar per simulated cycle
    from scalesim.scale_sim import scalesim

    simulation = scalesim(save_disk_space=True, verbose=False, config=config, topology=topology, layout=layout)
    simulation.run_scale(top_path=output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
