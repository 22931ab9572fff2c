"""pbmlib: label-based Pixel Block Mixing and the tools to measure what it costs and buys.

The public names most users need are importable from the package itself::

    import pbmlib
    faces = pbmlib.load_faces()
    mixed = pbmlib.mix_blocks(faces.images, faces.labels, block=(5, 5), seed=0)
    pbmlib.ssim_scores(faces.images, mixed).mean()
"""

from .data.datasets import ImageSet, load_dataset, load_faces, load_fashion_mnist, load_folder, load_mnist, load_wiki
from .pbm.release import mix_folder
from .pbm.mixing import gather_blocks, mix_blocks, mixing_sources, n_blocks
from .pbm.settings import Mixing
from .privacy.similarity import psnr_scores, ssim_floor_scores, ssim_scores, summarize_scores
from .pbm.restoration import class_log10_probability, restoration_log10_probability

__version__ = "0.1.0"

__all__ = [
    "ImageSet",
    "Mixing",
    "class_log10_probability",
    "gather_blocks",
    "load_dataset",
    "load_faces",
    "load_fashion_mnist",
    "load_folder",
    "load_mnist",
    "load_wiki",
    "mix_blocks",
    "mix_folder",
    "mixing_sources",
    "n_blocks",
    "psnr_scores",
    "restoration_log10_probability",
    "ssim_floor_scores",
    "ssim_scores",
    "summarize_scores",
]
