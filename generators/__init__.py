"""Image generators behind one interface (see ``generators.base``), found by name in ``GENERATORS``.

=================  ===========================================================================
name               what it does
=================  ===========================================================================
``bbdm``           Brownian Bridge Diffusion Model: condition image -> rare-class image
``cyclegan``       CycleGAN: source domain -> rare class (unpaired)
``masked_ddpm``    DDPM on rare-class images, inpainting a region of a source (RePaint)
``copies``         random oversampling (exact copies)
``erasing``        random erasing of square patches
``interpolation``  pixel interpolation of two rare-class images
``smote``          SMOTE on pixels
``adasyn``         ADASYN on pixels
``smote_tomek``    SMOTE with Tomek-link cleaning on pixels
=================  ===========================================================================

Importing this package registers the methods without importing torch.
"""

from generators import bbdm, classic, cyclegan, masked_ddpm
from generators.base import GENERATORS, Generator
from generators.conditions import CONDITIONS, Condition, make_condition

__all__ = [
    "CONDITIONS",
    "GENERATORS",
    "Condition",
    "Generator",
    "bbdm",
    "classic",
    "cyclegan",
    "make_condition",
    "masked_ddpm",
]
