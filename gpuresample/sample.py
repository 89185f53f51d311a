"""A built-in sample: a 3-D phantom with a CT-like volume and a label mask."""

from __future__ import annotations

import numpy as np

#: Ellipsoids of the phantom: centre and semi-axes (fractions of the box), value, label.
_ELLIPSOIDS = (
    ((0.50, 0.50, 0.50), (0.46, 0.40, 0.44), 40.0, 1),     # body (soft tissue, HU-like)
    ((0.50, 0.42, 0.38), (0.16, 0.14, 0.18), 60.0, 2),     # organ
    ((0.50, 0.64, 0.62), (0.12, 0.10, 0.14), -800.0, 3),   # air-filled cavity
    ((0.45, 0.40, 0.34), (0.04, 0.04, 0.05), 120.0, 4),    # lesion inside the organ
    ((0.50, 0.50, 0.50), (0.44, 0.38, 0.42), 0.0, None),   # inner body: keeps the shell brighter
)


def phantom(shape=(96, 128, 128), spacing=(2.5, 0.8, 0.8)):
    """A CT-like phantom: nested ellipsoids, a float32 volume and a uint8 label mask.

    Parameters
    ----------
    shape : sequence of 3 int
        Voxels per axis.
    spacing : sequence of 3 float
        Voxel size in mm (default anisotropic, thick slices along axis 0).

    Returns
    -------
    Scene
        With volume ``"CT"`` (float32, Hounsfield-like) and mask ``"Organs"``
        (uint8 labels 0-4), on a grid centred on the origin.

    Examples
    --------
    >>> scene = phantom((32, 40, 40))
    >>> sorted(scene.volumes), sorted(scene.masks)
    (['CT'], ['Organs'])
    >>> sorted(set(scene.masks["Organs"].ravel().tolist()))
    [0, 1, 2, 3, 4]
    """
    from .geometry import Grid
    from .scene import Scene

    shape = tuple(int(n) for n in shape)
    axes = np.meshgrid(*[(np.arange(n) + 0.5) / n for n in shape], indexing="ij", sparse=True)
    volume = np.full(shape, -1000.0, dtype=np.float32)
    mask = np.zeros(shape, dtype=np.uint8)
    for centre, radii, value, label in _ELLIPSOIDS:
        inside = sum(((a - c) / r) ** 2 for a, c, r in zip(axes, centre, radii)) <= 1.0
        if label is None:
            volume[inside] -= 10.0
            continue
        volume[inside] = value
        mask[inside] = label
    rng = np.random.default_rng(0)
    volume += rng.normal(0.0, 5.0, shape).astype(np.float32)
    grid = Grid(shape, spacing)
    centre = np.array(grid.center)
    grid = Grid(shape, spacing, origin=-centre)
    return Scene(grid, volumes={"CT": volume}, masks={"Organs": mask})
