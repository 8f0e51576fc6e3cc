"""LCP proxy messages: Datachain's wire format (see :mod:`kakehashi.lightclients.lcp_messages`).

The codec lives beside the light clients because the Corda-side LCP client verifies these
messages and a lower layer never imports a higher one (DESIGN §1); the LCP service and the
relayer use it under this name.
"""

from kakehashi.lightclients.lcp_messages import *  # noqa: F403
from kakehashi.lightclients.lcp_messages import __all__ as __all__
