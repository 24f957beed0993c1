"""RiverGen data-source service."""

import warnings

__version__ = "0.1.0"

# cryptography 47+ warns at import time that DSA is deprecated, because asyncssh still builds
# its DSA key class when loaded. The service never loads a DSA key, and the warning would be
# the first line a user sees on stderr (the CLI promises one line per refused setting), so it
# is silenced for that module only; any other deprecation still shows.
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"asyncssh(\.|$)")
