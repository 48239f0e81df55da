"""`recon-match train --config CFG.json --out DIR [--resume] [--max-steps N] [--threads N] [--ddp]`

Train the dense matcher on the synthetic mixture. With --resume the run continues exactly
from DIR/checkpoint_last.pt; a --config given with --resume overrides the saved config
(everything but `model`, e.g. new mixture weights). Ctrl-C saves and stops.
"""

import logging
import os

import torch

logger = logging.getLogger("recon-match.train")


def add_arguments(parser):
    parser.add_argument("--config", help="JSON config (keys of recon_match.train.config.default_conf)")
    parser.add_argument("--out", required=True, help="experiment folder")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint_last.pt")
    parser.add_argument("--max-steps", type=int, help="stop at this step (default: the config's max_steps)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--ddp", action="store_true", help="DistributedDataParallel (launch with torchrun)")


def run(args):
    from recon_match.train import Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.ddp:
        import torch.distributed as dist

        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        trainer = Trainer(args.out, args.config, resume=args.resume, ddp=args.ddp)
        step = trainer.train(max_steps=args.max_steps)
    finally:
        if args.ddp:
            dist.destroy_process_group()
    logger.info("stopped at step %d; checkpoint: %s", step, trainer.out / "checkpoint_last.pt")
    return 0
