"""`recon-match selftrain --video DIR --out DIR [--rounds R] [--steps-per-round N] [--init WEIGHTS] [--resume] [--label-only]`

GIM-style self-training: label nearby frames of every clip with the current model + SIFT
(fundamental-matrix verified), propagate the labels to distant frames, train on them mixed
with the synthetic mixture, and repeat with the new model. Resumable; Ctrl-C saves.
"""

import json
import logging
from pathlib import Path

import torch

logger = logging.getLogger("recon-match.selftrain")


def add_arguments(parser):
    parser.add_argument("--video", required=True, help="folder of clips: <clip>/00000.jpg ...")
    parser.add_argument("--out", required=True, help="self-training folder")
    parser.add_argument("--rounds", type=int, help="label -> train rounds (default 2)")
    parser.add_argument("--steps-per-round", type=int, help="training steps per round (default 200)")
    parser.add_argument("--init", help="weights or training checkpoint to start from (default: shipped weights)")
    parser.add_argument("--config", help="JSON overrides of recon_match.selftrain.loop.default_conf")
    parser.add_argument("--clips", nargs="+", help="only these clips")
    parser.add_argument("--max-frames", type=int, help="use the first N frames of each clip")
    parser.add_argument("--real-weight", type=float, help="share of training batches from the video labels")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--label-only", action="store_true",
                        help="only label the clips into OUT/labels with --init (resumable), for the "
                             "`real` block of a `recon-match train` config")


def label_only(args, conf):
    from recon_match.selftrain.loop import initial_model
    from recon_match.selftrain.store import label_videos

    model = initial_model(args.init, conf.get("seed", 0))
    return label_videos(args.video, Path(args.out) / "labels", model, conf.get("labelling", {}),
                        clips=conf.get("clips"), max_frames=conf.get("max_frames"))


def run(args):
    from recon_match.selftrain.loop import SelfTraining
    from recon_match.train.config import read_conf

    if args.threads:
        torch.set_num_threads(args.threads)
    conf = read_conf(args.config) if args.config else {}
    for key, value in (("rounds", args.rounds), ("steps_per_round", args.steps_per_round),
                       ("clips", args.clips), ("max_frames", args.max_frames)):
        if value is not None:
            conf[key] = value
    if args.real_weight is not None:
        conf["real"] = {**conf.get("real", {}), "weight": args.real_weight}
    if args.label_only:
        from recon_match.selftrain.store import total_stats
        stats = label_only(args, conf)
        logger.info("labels in %s/labels: %s", args.out, json.dumps(total_stats(stats)))
        return 0
    rounds = SelfTraining(args.video, args.out, conf, init=args.init, resume=args.resume).run()
    for r in rounds:
        logger.info("round %s", json.dumps(r))
    return 0
