"""FAHR-Face, reproduced."""

import warnings

# Two import-time warnings of third-party packages that say nothing about our results: tqdm's notebook
# fallback (chapters run with progress bars off) and torch's deprecation of torch.jit.script used by a dependency.
warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
