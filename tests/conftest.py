from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

# tests use tiny tensors: on a shared 2-core machine a second intra-op thread
# only spins against other work (measured 30x slower under load)
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data():
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


def require_trained_weights(min_pck3: float = 0.5):
    """Skip an end-to-end accuracy check unless the shipped weights are trained far enough.

    The weights improve across sessions; checks of matching accuracy on real scenes only
    make sense once their synthetic validation PCK@3 (recorded at export) reaches `min_pck3`.
    """
    from recon_match.model.loading import WEIGHTS_PATH, weights_info

    info = weights_info()
    if info is None:
        pytest.skip(f"no shipped weights at {WEIGHTS_PATH}")
    pck3 = ((info.get("validation") or {}).get("all") or {}).get("pck3", 0.0)
    if pck3 < min_pck3:
        pytest.skip(f"shipped weights (step {info.get('step')}) have validation PCK@3 {pck3:.2f} "
                    f"< {min_pck3}: not trained far enough for this accuracy check")


def untrained_matcher():
    """A seeded random-weight DenseMatcher that accepts every sampled match (random weights
    give low certainties), so engine tests get matches without trained weights."""
    from recon_match.model import DenseMatcher

    torch.manual_seed(0)
    return DenseMatcher({"sample": {"min_certainty": 0.0, "mutual_px": 3.0, "cell": 32, "seed": 0}}).eval()
