"""Generator 2: single-image lifting (L2M) — give image0 a plausible depth, render a novel view.

The scene is a set of layers over image0, each an analytic inverse depth
rho(x, y) = c + a*xn + b*yn (+ a few smooth waves), xn, yn = normalised image0 coordinates:
background layers (one plane, a piecewise-planar "room" = nearest of 2-3 planes, or a smooth
curved surface) and foreground objects (planar cut-outs pasted into image0 with a depth well in
front of the background). A second camera with a real baseline and rotation looks at the scene.

Ground truth is exact in both directions: warp0 is the projection of image0's depth; warp1 is
found per layer by inverting the layer's map analytically (a homography for planes, Newton
steps for curved layers), with a z-buffer over layers. An image1 pixel is valid only when the
nearest surface it sees was visible in image0; disocclusions and out-of-view regions are filled
with plausible texture from image0 (so the matcher must learn to reject them) and marked
invalid. image1 is rendered by inverse mapping image0 through warp1 (cv2.remap).
"""

import cv2
import numpy as np

from .homography import look_at_rotation, masked, pixel_planes

default_conf = {
    "max_objects": 3,
    "object_prob": 0.8,            # chance that a scene has foreground objects at all
    "baseline": (0.05, 0.3),       # camera baseline / depth of the scene centre
    "max_roll": 10.0,              # degrees of roll of the second camera
    "focal_range": (0.8, 1.5),     # focal length / max(H, W)
    "background": {"plane": 0.3, "room": 0.4, "smooth": 0.3},
    "newton_steps": 3,
}


def _layer(c, a, b, mask=None, waves=None, group=0):
    return {"m": (float(a), float(b), float(c)), "mask": mask, "waves": waves or [], "group": group,
            "box": (slice(None), slice(None))}


def layer_rho(layer, xn, yn):
    """Inverse depth of `layer` at normalised image0 coords (float32 arrays stay float32)."""
    a, b, c = layer["m"]
    rho = a * xn + b * yn + c
    for wx, wy, amp, ph in layer["waves"]:
        rho += amp * np.cos(wx * xn + wy * yn + ph)
    return rho


def layer_rho_grad(layer, xn, yn):
    """Inverse depth of `layer` and its gradient (d rho / d xn, d rho / d yn), as layer_rho
    does it, but with one wave phase computation for both."""
    a, b, c = layer["m"]
    rho = a * xn + b * yn + c
    gx, gy = np.full_like(xn, a), np.full_like(xn, b)
    for wx, wy, amp, ph in layer["waves"]:
        t = wx * xn + wy * yn + ph
        rho += amp * np.cos(t)
        s = amp * np.sin(t)
        gx -= wx * s
        gy -= wy * s
    return rho, gx, gy


def _random_plane(rng, c_range, slope, corners):
    """Inverse-depth plane with rho >= 0.25 * c at the image corners."""
    c = rng.uniform(*c_range)
    a, b = rng.uniform(-slope, slope, size=2) * c
    lo = min(a * x + b * y + c for x, y in corners)
    if lo < 0.25 * c:  # too steep: the plane would pass behind the camera in view
        k = 0.75 * c / (c - lo)
        a, b = a * k, b * k
    return c, a, b


def background_layers(rng, conf, corners):
    kinds = list(conf["background"])
    p = np.array([conf["background"][k] for k in kinds], np.float64)
    kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
    if kind == "plane":
        return [_layer(*_random_plane(rng, (0.8, 1.2), 0.8, corners))], kind
    if kind == "room":  # nearest of 2-3 planes: walls, floor, ceiling meeting at creases
        return [_layer(*_random_plane(rng, (0.6, 1.2), 1.2, corners)) for _ in range(int(rng.integers(2, 4)))], kind
    c, a, b = _random_plane(rng, (0.8, 1.2), 0.5, corners)
    waves = [tuple(float(v) for v in (*rng.uniform(-5, 5, size=2), rng.uniform(0.02, 0.07) * c,
                                        rng.uniform(0, 2 * np.pi))) for _ in range(3)]
    return [_layer(c, a, b, waves=waves)], kind


def _object_mask(rng, h, w):
    """A random blob/ellipse/polygon mask (H x W uint8) of a plausible object size."""
    mask = np.zeros((h, w), np.uint8)
    cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
    r = rng.uniform(0.08, 0.22) * min(h, w)
    kind = rng.random()
    if kind < 0.35:
        cv2.ellipse(mask, (int(cx), int(cy)), (int(r * rng.uniform(0.6, 1.6)), int(r * rng.uniform(0.6, 1.6))),
                    float(rng.uniform(0, 180)), 0, 360, 1, -1)
    elif kind < 0.7:
        k = int(rng.integers(3, 8))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = r * rng.uniform(0.6, 1.5, k)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], -1)
        cv2.fillPoly(mask, [pts.astype(np.int32)], 1)
    else:  # a box with a rounded blob on top: a crude object silhouette
        cv2.rectangle(mask, (int(cx - r), int(cy)), (int(cx + r), int(cy + r * 1.5)), 1, -1)
        cv2.circle(mask, (int(cx), int(cy)), int(r), 1, -1)
    return mask.astype(bool)


def add_objects(rng, conf, source, bg, norm, n=None):
    """Object layers in front of the background, each with its texture (`layer["texture"]`)."""
    h, w = norm[0].shape
    xn, yn = norm
    bg_rho = np.max([layer_rho(l, xn, yn) for l in bg], 0)
    if n is None:
        n = int(rng.integers(1, conf["max_objects"] + 1)) if rng.random() < conf["object_prob"] else 0
    layers = []
    for i in range(n):
        mask = _object_mask(rng, h, w)
        if mask.any():
            layers.append(object_layer(rng, mask, bg_rho, norm, group=i + 1))
            box = layers[-1]["box"]
            # texture only the object's box: a full-frame procedural image costs ~10x more
            layers[-1]["texture"] = (box, source(rng, box[0].stop - box[0].start,
                                                 box[1].stop - box[1].start)[0])
    return layers


def mask_box(mask):
    """Bounding box (row slice, column slice) of a non-empty H x W bool mask."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def object_layer(rng, mask, bg_rho, norm, group):
    """Planar layer over `mask`, nearer than the background by a clear margin everywhere.
    `layer["box"]` is the mask's bounding box: all per-object work stays inside it."""
    box = mask_box(mask)
    inner = mask[box]
    xn, yn, bg_rho = norm[0][box][inner], norm[1][box][inner], bg_rho[box][inner]
    c0 = float(bg_rho.max()) * rng.uniform(1.3, 2.2)
    a, b = rng.uniform(-0.15, 0.15, size=2) * c0
    x0, y0 = float(xn.mean()), float(yn.mean())
    layer = _layer(c0 - a * x0 - b * y0, a, b, mask=mask, group=group)
    layer["box"] = box
    rho = layer_rho(layer, xn, yn)
    margin = (rho / bg_rho).min()
    if margin < 1.2:  # a steep background: push the whole object nearer
        layer["m"] = tuple(v * 1.2 / margin for v in layer["m"])
    return layer


def sample_camera(rng, conf, h, w):
    """Shared intrinsics K and the second camera's cam_from_world (first camera = identity)."""
    f = rng.uniform(*conf["focal_range"]) * max(h, w)
    K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
    d = np.array([rng.uniform(-1, 1), rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5)])
    center = d / np.linalg.norm(d) * rng.uniform(*conf["baseline"])
    # look back at the scene centre (depth ~1) so the views overlap, as a photographer would
    target = np.array([rng.uniform(-0.15, 0.15), rng.uniform(-0.1, 0.1), 1.0])
    R = look_at_rotation(target - center, np.deg2rad(rng.uniform(-1, 1) * conf["max_roll"]))
    T1 = np.eye(4)
    T1[:3, :3], T1[:3, 3] = R, -R @ center
    return K, T1


def normalized_grid(h, w, K):
    """(xn, yn) float32 H x W: pixel grid through K^-1."""
    xs, ys = pixel_planes(h, w)
    f, cx, cy = (float(v) for v in (K[0, 0], K[0, 2], K[1, 2]))
    return (xs - cx) * (1 / f), (ys - cy) * (1 / f)


def label_scene(layers, norm):
    """Visible layer of each image0 pixel (nearest existing layer) and its inverse depth."""
    xn, yn = norm
    best = np.full(xn.shape, -np.inf, np.float32)
    label = np.zeros(xn.shape, np.int32)
    for i, layer in enumerate(layers):
        box = layer["box"]  # objects exist only inside their box: skip the rest of the frame
        rho = layer_rho(layer, xn[box], yn[box])
        better = rho > best[box]
        if layer["mask"] is not None:
            better &= layer["mask"][box]
        np.copyto(best[box], rho, where=better)
        label[box][better] = i
    return label, best


def project(Ab, rho, xn, yn):
    """Image1 pixels and depth of image0 points (normalised coords + inverse depth).

    Ab = (A = K R, b = K t); rho * [u*z1, v*z1, z1] = A [xn, yn, 1] + b rho."""
    A, b = (v.tolist() for v in Ab)
    P = []
    for i in range(3):  # A[i] . [xn, yn, 1] + b[i] rho, in place: fewer full-image temporaries
        p, t = xn * A[i][0], yn * A[i][1]
        p += t
        p += A[i][2]
        p += np.multiply(rho, b[i], out=t)
        P.append(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        return P[0] / P[2], P[1] / P[2], P[2] / rho, P


def invert_layer(layer, Ab, u1, v1, steps):
    """Normalised image0 coords (xn, yn) of the layer point seen at image1 pixels (u1, v1),
    its inverse depth in view 0, depth in view 1 and a mask of converged solutions in front
    of both cameras."""
    A, bv = Ab
    M = A + np.outer(bv, layer["m"])  # plane: rho * p1 = (A + b m^T) [xn, yn, 1]
    Mi = np.linalg.inv(M).tolist()
    X, Y, W = (Mi[i][0] * u1 + Mi[i][1] * v1 + Mi[i][2] for i in range(3))
    Al, bl = A.tolist(), bv.tolist()
    with np.errstate(divide="ignore", invalid="ignore"):
        xn, yn = np.divide(X, W, out=X), np.divide(Y, W, out=Y)
        for _ in range(steps if layer["waves"] else 0):  # Newton on the curved part
            rho, gx, gy = layer_rho_grad(layer, xn, yn)
            u, v, _, P = project(Ab, rho, xn, yn)
            dPx = [Al[i][0] + bl[i] * gx for i in (0, 1, 2)]
            dPy = [Al[i][1] + bl[i] * gy for i in (0, 1, 2)]
            j11, j12 = (dPx[0] - u * dPx[2]) / P[2], (dPy[0] - u * dPy[2]) / P[2]
            j21, j22 = (dPx[1] - v * dPx[2]) / P[2], (dPy[1] - v * dPy[2]) / P[2]
            det = j11 * j22 - j12 * j21
            ru, rv = u - u1, v - v1
            xn = xn - (j22 * ru - j12 * rv) / det
            yn = yn - (j11 * rv - j21 * ru) / det
        rho = layer_rho(layer, xn, yn)
        u, v, z1, _ = project(Ab, rho, xn, yn)
        ok = (rho > 0) & (z1 > 0) & (np.abs(u - u1) < 0.02) & (np.abs(v - v1) < 0.02)
    return xn, yn, rho, z1, ok


def _nearest(x, y, h, w):
    """Flat index (row * w + column) of the pixel nearest to (x, y), clamped into the image
    (NaN -> 0), and whether (x, y) lies inside. Flat indices make lookups one np.take."""
    inside = (x > -0.5) & (x < w - 0.5) & (y > -0.5) & (y < h - 0.5)
    # fmax/fmin send NaN to the bound, as nan_to_num + clip would, without the copies
    xi = np.fmin(np.fmax(np.rint(x), 0), w - 1).astype(np.int32)
    yi = np.fmin(np.fmax(np.rint(y), 0), h - 1).astype(np.int32)
    yi *= w
    yi += xi
    return yi, inside


def object_window(layer, Ab, K, h, w):
    """Slices of image1 that can see the (planar) object: its mask's bounding box projected
    into view 1, plus a margin. Objects are small, so this saves most of their cost."""
    rows, cols = layer["box"]
    x0, x1, y0, y1 = cols.start, cols.stop - 1, rows.start, rows.stop - 1
    f, cx, cy = K[0, 0], K[0, 2], K[1, 2]
    xn = (np.array([x0, x1, x0, x1]) + np.array([-1, 1, -1, 1]) - cx) / f
    yn = (np.array([y0, y0, y1, y1]) + np.array([-1, -1, 1, 1]) - cy) / f
    u, v, _, P = project(Ab, layer_rho(layer, xn, yn), xn, yn)
    if (P[2] <= 0).any():  # the box straddles the camera plane: search the whole view
        return slice(0, h), slice(0, w)
    x0, x1 = int(np.clip(np.floor(u.min()) - 2, 0, w)), int(np.clip(np.ceil(u.max()) + 3, 0, w))
    y0, y1 = int(np.clip(np.floor(v.min()) - 2, 0, h)), int(np.clip(np.ceil(v.max()) + 3, 0, h))
    return slice(y0, y1), slice(x0, x1)


def zbuffer_view1(layers, Ab, K, label0, steps):
    """Per image1 pixel: nearest layer hit (image0 coords q, depth), its layer and whether the
    hit point was visible in image0."""
    h, w = label0.shape
    xs, ys = pixel_planes(h, w)
    f, cx, cy = (float(v) for v in (K[0, 0], K[0, 2], K[1, 2]))
    groups = np.take([l["group"] for l in layers], label0)
    bg = [l for l in layers if l["mask"] is None]
    zbuf = np.full((h, w), np.inf, np.float32)
    qx, qy = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    lab1 = np.full((h, w), -1, np.int32)
    vis = np.zeros((h, w), bool)
    for i, layer in enumerate(layers):
        win = (slice(0, h), slice(0, w)) if layer["mask"] is None else object_window(layer, Ab, K, h, w)
        xn, yn, rho, z1, ok = invert_layer(layer, Ab, xs[win], ys[win], steps)
        x, y = xn * f + cx, yn * f + cy
        idx, inside = _nearest(x, y, h, w)
        ok &= inside
        if layer["mask"] is not None:
            ok &= np.take(layer["mask"], idx)
        else:  # a background plane exists only where it is the nearest background plane
            for other in bg:
                if other is not layer:
                    ok &= rho >= layer_rho(other, xn, yn) - 1e-6
        nearer = ok & (z1 < zbuf[win])
        for buf, val in ((zbuf, z1), (qx, x), (qy, y)):
            np.copyto(buf[win], val, where=nearer)
        lab1[win][nearer] = i
        vis[win][nearer] = np.take(groups, idx[nearer]) == layer["group"]
    return qx, qy, zbuf, lab1, vis


def render_pair(rng, image, layers, K, T1, steps=3):
    """Render the lifted pair; returns the contract arrays plus depth0/depth1 and cameras."""
    h, w = image.shape[:2]
    xs, ys = pixel_planes(h, w)
    norm = normalized_grid(h, w, K)
    label0, rho0 = label_scene(layers, norm)
    image0 = image.copy()
    for i, layer in enumerate(layers):
        if "texture" in layer:
            box, patch = layer["texture"]
            seen = label0[box] == i
            image0[box][seen] = patch[seen]
    Ab = (K @ T1[:3, :3], K @ T1[:3, 3])
    qx, qy, depth1, lab1, valid1 = zbuffer_view1(layers, Ab, K, label0, steps)
    warp1 = masked(np.stack([qx, qy], -1), valid1)

    u, v, z1, _ = project(Ab, rho0, *norm)
    idx, inside = _nearest(u, v, h, w)
    # covisible: seen by camera 1 and the surface camera 1 sees there is this very point
    # (same layer, and its inverse map returns here: rules out self-occlusion of curved layers);
    # (qx, qy) is warp1 wherever valid1 holds
    valid0 = inside & (z1 > 0) & np.take(valid1, idx) & (np.take(lab1, idx) == label0)
    valid0 &= np.hypot(np.take(qx, idx) - xs, np.take(qy, idx) - ys) < 3.0
    warp0 = masked(np.stack([u, v], -1), valid0)

    image1 = cv2.remap(image0, warp1, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    hit = np.isfinite(depth1)
    fill = fill_texture(rng, image0, np.where(hit, qx, xs), np.where(hit, qy, ys))
    image1 = cv2.copyTo(image1, valid1.view(np.uint8), fill)
    T0 = np.eye(4)
    return {"image0": image0, "image1": image1, "warp0": warp0, "valid0": valid0,
            "warp1": warp1, "valid1": valid1, "depth0": 1 / rho0,
            "depth1": depth1, "K0": K, "K1": K, "T0": T0, "T1": T1}


def fill_texture(rng, image0, x, y):
    """Plausible but wrong texture for disoccluded/out-of-view pixels: image0 sampled at the
    hidden surface's own coordinates (x, y) shifted by a random offset (keeps its perspective)."""
    h, w = image0.shape[:2]
    ang = rng.uniform(0, 2 * np.pi)
    off = rng.uniform(0.15, 0.35) * max(h, w) * np.array([np.cos(ang), np.sin(ang)], np.float32)
    return cv2.remap(image0, x + off[0], y + off[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def make_pair(rng, source, h, w, conf=None):
    """A lifted pair from one source image (callable (rng, h, w) -> (uint8 image, kind)).

    Returns numpy arrays: image0/image1 H x W x 3 uint8, warp0/warp1 H x W x 2 float32,
    valid0/valid1 H x W bool, depth0/depth1 H x W float32 (z, inf = nothing), K0/K1 3x3,
    T0/T1 4x4 cam_from_world, and `source` (the image source kind)."""
    conf = {**default_conf, **(conf or {})}
    image, kind = source(rng, h, w)
    K, T1 = sample_camera(rng, conf, h, w)
    f, cx, cy = K[0, 0], K[0, 2], K[1, 2]
    norm = normalized_grid(h, w, K)
    corners = [((x - cx) / f, (y - cy) / f) for x in (0, w - 1) for y in (0, h - 1)]
    bg, _ = background_layers(rng, conf, corners)
    layers = bg + add_objects(rng, conf, source, bg, norm)
    return render_pair(rng, image, layers, K, T1, conf["newton_steps"]) | {"source": kind}
