"""`recon-match` dispatcher: each subcommand lives in `pipelines/<name>.py` and exposes
`add_arguments(parser)` and `run(args) -> int`. Modules are imported only when used so
that a missing optional dependency (open3d, hloc) only affects its own command."""

import argparse
import importlib
import logging
import sys

COMMANDS = {
    "sfm": "Reconstruct a folder of images (dense matcher or COLMAP SIFT baseline)",
    "localize": "Localize query images against a reconstruction",
    "pairs": "Select image pairs (exhaustive, sequential, retrieval, gps, covisibility)",
    "match": "Densely match pairs into hloc-format features.h5 / matches.h5",
    "train": "Train the dense matcher on the synthetic mixture",
    "selftrain": "GIM-style self-training on unlabeled video",
    "synth": "Preview the synthetic training mixture",
    "render": "Render the bundled sample scenes",
    "evaluate": "Run the evaluation suites and write a report",
    "viz": "Show or render a reconstruction with Open3D",
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="recon-match", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    wanted = argv[0] if argv and argv[0] in COMMANDS else None
    for name, help_ in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == wanted:  # only the command that runs is imported
            importlib.import_module(f"pipelines.{name}").add_arguments(p)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="[%(asctime)s %(name)s %(levelname)s] %(message)s", datefmt="%H:%M:%S")
    module = importlib.import_module(f"pipelines.{args.command}")
    try:
        return int(module.run(args) or 0)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        logging.getLogger("recon-match").error("%s", e)
        return 2
    except KeyboardInterrupt:
        logging.getLogger("recon-match").error("interrupted; finished outputs are kept, rerun to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
