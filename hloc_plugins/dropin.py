"""`hloc.match_dense.main`, run by our batched engine (`recon_match.matching`).

    from hloc_plugins import dropin
    features, matches = dropin.main(match_dense.confs["recon_dense"], pairs, images,
                                     export_dir=outputs)

Same signature, same conf, same output file names and the same layouts that hloc's
`reconstruction.main` / `localize_sfm.main` read (`hloc.utils.io.get_keypoints`,
`get_matches`), plus `scores` and `image_size` per image. Differences, all deliberate:
pairs are batched, image features computed once per image, matches refined on the
full-resolution images and quantized into keypoints shared by all pairs of an image; images
are matched in colour whatever `grayscale` says (our network's input). `cell_size` and
`max_error` keep hloc's meaning (original pixels; converted with the median resize factor).

Like hloc: images already in the output features file, and those in `features_ref`, keep
their keypoints (localization against a model); new images are added to that file;
`overwrite=False` returns at once when every pair is already matched. hloc itself is not
needed to run this.
"""

import logging
import shutil
import tempfile
from pathlib import Path

import h5py
import numpy as np

from recon_match import matching
from recon_match.fileio import atomic_path, safe_name
from recon_match.h5io import names_to_pair, open_h5
from recon_match.pairs import read_pairs
from recon_match.preprocess import network_size

logger = logging.getLogger(__name__)

MODEL_KEYS = {"name": None, "weights": "weights", "max_num_matches": "num_matches",
              "mutual": "mutual"}
PREPROCESSING_KEYS = {"grayscale", "resize_max", "dfactor", "cache_images"}


def output_paths(conf, pairs, export_dir=None, features=None, matches=None):
    """(features, matches) paths exactly as hloc.match_dense.main names them."""
    if isinstance(features, Path):
        if matches is None:
            raise ValueError("Either provide both features and matches as Path or both as names.")
        return features, Path(matches)
    if export_dir is None:
        raise ValueError(f"Provide an export_dir if features and matches are not file paths: "
                         f"{features}, {matches}.")
    prefix = "feats_" if features is None else features
    features = Path(export_dir, f"{prefix}{conf['output']}.h5")
    matches = Path(matches) if matches is not None else \
        Path(export_dir, f"{conf['output']}_{Path(pairs).stem}.h5")
    return features, matches


def engine_conf(conf, image_dir, names) -> dict:
    """Translate an hloc dense conf (`recon_dense` model) into a `recon_match.matching` conf."""
    model = dict(conf.get("model", {}))
    if model.get("name") != "recon_dense":
        raise ValueError(f"the drop-in runs only the recon_dense matcher, conf asks for "
                         f"model {model.get('name')!r}")
    pre = dict(conf.get("preprocessing", {}))
    for what, keys, known in (("model", model, MODEL_KEYS), ("preprocessing", pre,
                                                              PREPROCESSING_KEYS)):
        unknown = sorted(set(keys) - set(known))
        if unknown:
            raise ValueError(f"unknown hloc conf {what} keys {unknown}; known: {sorted(known)}")
    dfactor = int(pre.get("dfactor", 16))
    resize = pre.get("resize_max")
    resize = max(dfactor, int(resize) // dfactor * dfactor) if resize else None
    # hloc's cell_size / max_error are in original pixels; the engine's in network pixels.
    scale = float(np.median([max(s) / max(network_size(*s, resize, dfactor)) for s in
                             (matching.oriented_size(Path(image_dir) / n) for n in names)]))
    out = {"output": conf["output"], "resize": resize, "dfactor": dfactor,
           "quantize": {"cell_size": conf["cell_size"] / scale,
                        "max_error": conf["max_error"] / scale}}
    out.update({MODEL_KEYS[k]: v for k, v in model.items() if MODEL_KEYS[k]})
    return out


def _groups(f: h5py.File) -> list[str]:
    """Names of the groups that hold datasets (image names with '/' are nested groups)."""
    names = set()
    f.visititems(lambda n, obj: names.add(obj.parent.name.lstrip("/"))
                 if isinstance(obj, h5py.Dataset) else None)
    return sorted(names)


def _copy_groups(src: h5py.File, dst: h5py.File, names, replace: bool):
    for name in names:
        if name in dst:
            if not replace:
                continue
            del dst[name]
        parent, _, leaf = name.rpartition("/")
        src.copy(src[name], dst.require_group(parent) if parent else dst, name=leaf)


def _merge_into(src: Path, dst: Path, replace: bool):
    """Add the groups of h5 `src` to `dst` (atomically); existing ones replaced if `replace`."""
    with atomic_path(dst) as tmp:
        if dst.exists():
            shutil.copyfile(dst, tmp)
        with open_h5(src) as fs, h5py.File(tmp, "a") as fd:
            _copy_groups(fs, fd, _groups(fs), replace)


def _reference_file(paths, tmp_dir: Path):
    """One features file with the fixed keypoints of all `paths` (first one wins), or None."""
    paths = list(dict.fromkeys(Path(p) for p in paths))
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"Reference feature file {p}.")
    if len(paths) <= 1:
        return paths[0] if paths else None
    merged = tmp_dir / "features_ref.h5"
    for p in paths:
        _merge_into(p, merged, replace=False)
    return merged


def _all_done(features: Path, matches: Path, pairs, names) -> bool:
    if not (features.is_file() and matches.is_file()):
        return False
    with open_h5(features) as ff, open_h5(matches) as fm:
        return all(n in ff for n in names) and all(
            names_to_pair(*p) in fm or names_to_pair(*p[::-1]) in fm for p in pairs)


def main(conf, pairs, image_dir, export_dir=None, matches=None, features=None,
         features_ref=None, max_kps=8192, overwrite=False):
    """hloc.match_dense.main's contract; returns (features, matches) paths."""
    pairs, image_dir = Path(pairs), Path(image_dir)
    features, matches = output_paths(conf, pairs, export_dir, features, matches)
    pair_list = read_pairs(pairs)
    names = sorted({safe_name(n, "image name") for p in pair_list for n in p})
    if not overwrite and _all_done(features, matches, pair_list, names):
        logger.info("All pairs exist. Skipping dense matching.")
        return features, matches
    refs = [] if features_ref is None else (
        [features_ref] if isinstance(features_ref, (str, Path)) else list(features_ref))
    if features.is_file() and not overwrite:
        refs.append(features)  # as hloc: images already there keep their keypoints
    econf = engine_conf(conf, image_dir, names)
    features.parent.mkdir(parents=True, exist_ok=True)
    # The engine's resumable raw-match store sits next to its matches file: keep that file
    # beside ours (not in the temporary folder) so an interrupted run resumes.
    engine_matches = matches.with_name(f".{matches.stem}-dropin.h5")
    with tempfile.TemporaryDirectory(dir=features.parent, prefix=".dropin-") as tmp:
        tmp = Path(tmp)
        new_features, _ = matching.main(
            econf, pairs, image_dir, features=tmp / "features.h5", matches=engine_matches,
            features_ref=_reference_file(refs, tmp), max_kps=max_kps, overwrite=overwrite)
        _merge_into(new_features, features, replace=overwrite)
        _merge_into(engine_matches, matches, replace=True)
    engine_matches.unlink()
    return features, matches
