"""CycleGAN: source domain (the condition of the source images) -> rare class.

Only the generator is imported here; ``generators.cyclegan.networks`` holds the networks.
"""

from generators.cyclegan.generator import CycleGANGenerator, scaled_architecture

__all__ = ["CycleGANGenerator", "scaled_architecture"]
