"""BBDM: a Brownian-bridge scheduler, a UNet factory, a sampling pipeline and the generator.

Only the generator is imported here (it imports torch when used); import
``generators.bbdm.scheduler`` / ``.pipeline`` / ``.model`` directly for the parts.
"""

from generators.bbdm.generator import BBDMGenerator, scaled_schedule

__all__ = ["BBDMGenerator", "scaled_schedule"]
