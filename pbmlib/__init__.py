"""pbmlib: label-based Pixel Block Mixing and the tools to measure what it costs and buys.

The public names most users need are importable from the package itself::

    import pbmlib
    faces = pbmlib.load_faces()
    mixed = pbmlib.mix_blocks(faces.images, faces.labels, block=(5, 5), seed=0)
    pbmlib.ssim_scores(faces.images, mixed).mean()
"""

from .data.datasets import ImageSet, load_dataset, load_faces, load_fashion_mnist, load_folder, load_mnist, load_wiki
from .pbm.folders import mix_folder
from .pbm.mixing import draw_block_sources, gather_blocks, mix_blocks, n_blocks
from .privacy.similarity import psnr_scores, ssim_floor_scores, ssim_scores, summarize_scores
from .pbm.restoration import class_log10_probability, restoration_log10_probability

__version__ = "0.1.0"

__all__ = [
    "ImageSet",
    "class_log10_probability",
    "draw_block_sources",
    "gather_blocks",
    "load_dataset",
    "load_faces",
    "load_fashion_mnist",
    "load_folder",
    "load_mnist",
    "load_wiki",
    "mix_blocks",
    "mix_folder",
    "n_blocks",
    "psnr_scores",
    "restoration_log10_probability",
    "ssim_floor_scores",
    "ssim_scores",
    "summarize_scores",
]
