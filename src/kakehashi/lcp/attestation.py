"""IAS attestation verification reports (see :mod:`kakehashi.lightclients.lcp_attestation`).

The checks live beside the light clients because the Corda-side LCP client registers enclave keys
with them and a lower layer never imports a higher one (DESIGN §1); the LCP service uses them
under this name.
"""

from kakehashi.lightclients.lcp_attestation import *  # noqa: F403
from kakehashi.lightclients.lcp_attestation import __all__ as __all__
