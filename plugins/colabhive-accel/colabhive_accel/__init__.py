"""What the accelerator backends share, kept beside them rather than in the core.

The core never touches torch placement itself (it asks the ``hive_place_model`` hook);
the GPU backends do it the same way and differ only in the target string, so the steps
live once here, in a package they both depend on, and are checked on the CPU.
This package registers no hooks: it is a library, not a plugin.
"""

from .placing import prepare

__all__ = ["prepare"]
